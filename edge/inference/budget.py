"""Keeps the analysis within a CPU budget: CPU-seconds spent per second of audio, measured as it runs.

Live input (a microphone) cannot wait, so over budget the guard sheds load one step at a time down a declared
ladder (by default: time-shift TTA first, then members from the lowest priority up, then a longer hop by
skipping windows) and climbs back when there is headroom again. File input can wait, so it is paced instead:
the loop sleeps until its CPU use averages the budget.

Restoring: the cost of the level above was measured before it was shed, at the same time as the cost on
entering this level; their ratio predicts what the level above would cost now. The guard climbs back when that
prediction fits within `headroom` x budget, after holding the current level for `hold_seconds` of audio (the
hold doubles each time a restored level has to be shed again, up to 16 times, so a machine that stays busy is
not probed every minute).

Members the schedule holds off (a night member by day) count as shed: the member lever never sheds them, so the
guard never restores them either, and never sheds the last member the schedule lets run.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import structlog

log = structlog.get_logger(__name__)

Lever = Literal["tta", "members", "hop"]
SHED_ORDER: tuple[Lever, ...] = ("tta", "members", "hop")


@dataclass(frozen=True)
class Load:
    """What runs at one level: TTA on or off, the members by index, every `hop_factor`-th window."""

    tta: bool
    active: tuple[int, ...]
    hop_factor: int = 1

    def describe(self, names: Sequence[str], held_off: Collection[int] = ()) -> str:
        running = ",".join(names[i] for i in self.active if i not in held_off) or "no member"
        parts = [running, "tta" if self.tta else "no tta"]
        if self.hop_factor > 1:
            parts.append(f"hop x{self.hop_factor}")
        return "; ".join(parts)


def ladder(
    priorities: Sequence[int],
    has_tta: bool,
    order: Sequence[Lever] = SHED_ORDER,
    max_hop_factor: int = 4,
    held_off: Collection[int] = (),
) -> list[Load]:
    """Level 0 runs everything; each next level sheds one more step. Members go lowest priority first (the
    later-declared first among equals); the last member is never shed. Members `held_off` by the schedule are
    not shed (their steps would save nothing) and stay in `active`: the schedule keeps them from running."""
    load = Load(tta=has_tta, active=tuple(range(len(priorities))))
    loads = [load]
    sheddable = [i for i in range(len(priorities)) if i not in held_off]
    for lever in order:
        if lever == "tta" and load.tta:
            load = replace(load, tta=False)
            loads.append(load)
        elif lever == "members":
            for i in sorted(sheddable, key=lambda i: (priorities[i], -i))[:-1]:
                load = replace(load, active=tuple(j for j in load.active if j != i))
                loads.append(load)
        elif lever == "hop":
            for factor in range(2, max_hop_factor + 1):
                load = replace(load, hop_factor=factor)
                loads.append(load)
    return loads


@dataclass(frozen=True)
class BudgetOptions:
    """`cpu_budget`: CPU-seconds per second of audio (0.5 = half of one core), None for no limit. `max_lag`:
    seconds live audio may wait before the guard sheds at once, whatever the measured cost."""

    cpu_budget: float | None = None
    order: tuple[Lever, ...] = SHED_ORDER
    max_hop_factor: int = 4
    headroom: float = 0.8
    settle_seconds: float = 10.0
    hold_seconds: float = 60.0
    max_lag: float = 3.0


class BudgetGuard:
    """Fed the CPU time and audio of each chunk; says which `load` to run. Pure bookkeeping apart from
    `pace`, which sleeps, and its log lines. `ladder_for` gives the loads when the schedule holds some
    members off (see `hold_off`); without it the loads stay as given."""

    def __init__(
        self,
        options: BudgetOptions,
        loads: list[Load],
        names: Sequence[str],
        live: bool,
        cpu_clock=time.process_time,
        clock=time.monotonic,
        sleep=time.sleep,
        ladder_for: Callable[[frozenset[int]], list[Load]] | None = None,
    ):
        self.options = options
        self.loads = loads
        self.names = tuple(names)
        self.live = live
        self.held_off: frozenset[int] = frozenset()
        self._ladder_for = ladder_for or (lambda held_off: loads)
        self.level = 0
        self.changes = 0
        self.paced_seconds = 0.0
        self._cpu_clock, self._clock, self._sleep = cpu_clock, clock, sleep
        self._last_cpu = cpu_clock()
        self._samples: deque[tuple[float, float]] = deque()  # (audio s, cpu s) per chunk at this level
        self._audio_sum = self._cpu_sum = 0.0  # over _samples
        self._audio_at_level = 0.0
        self._left_at: dict[int, float] = {}  # cost of a level when it was shed
        self._entered_at: dict[int, float] = {}  # first settled cost of a level
        self._hold = options.hold_seconds
        self._restored = False  # this level was reached by climbing back
        self._debt = 0.0
        self._last_wall = clock()
        self.cost: float | None = None

    @property
    def load(self) -> Load:
        return self.loads[self.level]

    def hold_off(self, members: frozenset[int]) -> None:
        """The schedule now holds these `members` off: the ladder is rebuilt without steps that shed them, at
        the level that sheds what the current one shed of the members still allowed, and costs are measured
        afresh (a different set of members runs)."""
        if members == self.held_off:
            return
        before, held_before = self.load, self.held_off
        self.held_off, self.loads = members, self._ladder_for(members)
        self.level = equivalent_level(before, held_before, self.loads, members)
        self._left_at.clear()
        self._entered_at.clear()
        self._restored = False
        self._forget_samples()
        if self.options.cpu_budget is None:
            return
        log.info(
            "load_rescheduled",
            level=self.level,
            load=self.load.describe(self.names, members),
            was=before.describe(self.names, held_before),
        )

    def account(self, audio_seconds: float, lag: float | None = None) -> None:
        """One chunk analysed: the process's CPU time since the last call is its cost."""
        cpu_now = self._cpu_clock()
        cpu, self._last_cpu = cpu_now - self._last_cpu, cpu_now
        if audio_seconds <= 0:
            return
        o = self.options
        self._samples.append((audio_seconds, cpu))
        self._audio_sum += audio_seconds
        self._cpu_sum += cpu
        self._audio_at_level += audio_seconds
        while self._audio_sum - self._samples[0][0] >= o.settle_seconds * 3:  # keep the last 3 settles
            audio, cpu_then = self._samples.popleft()
            self._audio_sum -= audio
            self._cpu_sum -= cpu_then
        self.cost = cost = self._cpu_sum / self._audio_sum
        if o.cpu_budget is None:
            return
        if self.live:
            self._steer(lag, cost, o.cpu_budget)
        else:
            self._debt += cpu / o.cpu_budget

    def _steer(self, lag: float | None, cost: float, budget: float) -> None:
        """Move one level down when behind or over `budget` (CPU seconds per audio second), back up when the
        level above is predicted to fit; `cost` is the current settled cost."""
        o = self.options
        behind = lag is not None and lag > o.max_lag
        settled = self._audio_at_level >= o.settle_seconds
        if settled and self.level not in self._entered_at:
            self._entered_at[self.level] = cost
        if (behind or (settled and cost > budget)) and self.level + 1 < len(self.loads):
            if self._restored and self._audio_at_level < self._hold:
                self._hold = min(self._hold * 2, o.hold_seconds * 16)  # a restored level did not hold
            self._left_at[self.level] = cost
            self._move(+1, "load_shed", cost, lag=lag)
        elif self.level > 0 and settled and self._audio_at_level >= self._hold:
            above = self.level - 1
            predicted = cost * self._left_at.get(above, cost) / self._entered_at[self.level]
            if predicted <= o.headroom * budget:
                self._move(-1, "load_restored", cost, predicted=round(predicted, 4))
        elif self.level == 0 and self._audio_at_level >= self._hold * 4:
            self._hold = o.hold_seconds  # a long stretch at full load: forget past failures

    def _move(self, step: int, event: str, cost: float, **context) -> None:
        before = self.load
        self.level += step
        self.changes += 1
        self._restored = step < 0
        if step > 0:
            self._entered_at.pop(self.level, None)  # measured afresh under today's conditions
        log.warning(
            event,
            level=self.level,
            load=self.load.describe(self.names, self.held_off),
            was=before.describe(self.names, self.held_off),
            cost=round(cost, 4),
            budget=self.options.cpu_budget,
            **context,
        )
        self._forget_samples()

    def _forget_samples(self) -> None:
        self._samples.clear()
        self._audio_sum = self._cpu_sum = 0.0
        self._audio_at_level = 0.0

    def pace(self, stop: threading.Event) -> None:
        """File input: sleep until the CPU spent so far averages the budget (credit for idle time is capped at
        one second, so a quiet hour does not buy a burst)."""
        now = self._clock()
        self._debt = max(self._debt - (now - self._last_wall), -1.0)
        self._last_wall = now
        while self._debt > 0.001 and not stop.is_set():
            nap = min(self._debt, 0.1)
            self._sleep(nap)
            now = self._clock()
            slept, self._last_wall = now - self._last_wall, now
            self._debt -= slept
            self.paced_seconds += slept

    def stats(self) -> dict[str, object]:
        return {
            "cpu_budget": self.options.cpu_budget,
            "cpu_cost": None if self.cost is None else round(self.cost, 4),
            "load_level": self.level,
            "load": self.load.describe(self.names, self.held_off),
            "load_changes": self.changes,
            "paced_seconds": round(self.paced_seconds, 1),
        }


def equivalent_level(before: Load, held_before: Collection[int], loads: list[Load], held_off: Collection[int]) -> int:
    """The first level of `loads` that sheds at least what `before` shed: TTA, hop, and the members it shed
    that `held_off` still lets run (or as many as the ladder can shed)."""
    members = set(loads[0].active)  # level 0 runs every member
    still_shed = members - set(before.active) - set(held_before) - set(held_off)
    for level, load in enumerate(loads):
        shed = members - set(load.active)
        members_done = still_shed <= shed or len(set(load.active) - set(held_off)) <= 1
        if load.tta <= before.tta and load.hop_factor >= before.hop_factor and members_done:
            return level
    return len(loads) - 1
