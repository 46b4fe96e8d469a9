"""Waiting on progress, never on the clock: a condition polled until it holds, failing only after a generous
timeout, or a measure polled until it reaches its goal, failing only when it stops moving."""

from __future__ import annotations

import time


def wait_for(check, timeout: float = 60.0, what: str = "condition", poll: float = 0.05):
    """Polls `check` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout} s")


def wait_for_progress(measure, goal, stall: float = 120.0, what: str = "progress", poll: float = 0.5):
    """Polls `measure()` until it reaches `goal`; fails only when its value has not changed for `stall` seconds
    (slow is fine, stuck is not). The last value."""
    value, since = measure(), time.monotonic()
    while value < goal:
        time.sleep(poll)
        now = measure()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            raise AssertionError(f"{what}: stuck at {value} (of {goal}) for {stall} s")
    return value
