"""What each stage of the pipeline costs: CPU seconds of the thread that ran it, and wall seconds.

The pipeline runs in one thread (ONNX Runtime runs a session with one intra-op thread in the caller's), so the
thread's CPU time is the stage's real cost, untouched by the other threads of the process or other processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class StageCost:
    calls: int = 0
    items: int = 0  # crops, windows or records, as the stage counts them
    cpu: float = 0.0
    wall: float = 0.0


class Stages:
    """Accumulates the cost of named stages; `snapshot` copies the totals."""

    def __init__(self):
        self.costs: dict[str, StageCost] = {}

    @contextmanager
    def measure(self, name: str, items: int = 1) -> Iterator[None]:
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            yield
        finally:
            cost = self.costs.setdefault(name, StageCost())
            cost.calls += 1
            cost.items += items
            cost.cpu += time.thread_time() - cpu
            cost.wall += time.perf_counter() - wall

    def snapshot(self) -> dict[str, StageCost]:
        return {name: StageCost(c.calls, c.items, c.cpu, c.wall) for name, c in self.costs.items()}
