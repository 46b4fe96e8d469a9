"""The CPU budget guard: the ladder it sheds down, how it steers live input and paces file input. Clocks are
injected, so each decision is checked against the cost it was given."""

import threading

import pytest
from structlog.testing import capture_logs

from edge.inference.budget import BudgetGuard, BudgetOptions, Load, ladder

NAMES = ("birdnet", "frogs", "bats")


class Clocks:
    """CPU and wall clocks the test advances."""

    def __init__(self):
        self.cpu = 0.0
        self.wall = 0.0

    def sleep(self, seconds):
        self.wall += seconds


def guard_with(clocks, live=True, priorities=(2, 1, 0), **options):
    loads = ladder(priorities, has_tta=True, max_hop_factor=3)
    return BudgetGuard(
        BudgetOptions(**options),
        loads,
        NAMES,
        live,
        cpu_clock=lambda: clocks.cpu,
        clock=lambda: clocks.wall,
        sleep=clocks.sleep,
        ladder_for=lambda held_off: ladder(priorities, has_tta=True, max_hop_factor=3, held_off=held_off),
    )


def feed(guard, clocks, seconds, cost, chunk=0.5, lag=None):
    """`seconds` of audio in chunks, each costing `cost` CPU-seconds per audio second."""
    for _ in range(round(seconds / chunk)):
        clocks.cpu += cost * chunk
        clocks.wall += chunk
        guard.account(chunk, lag)


def test_ladder_sheds_tta_then_members_by_priority_then_hop():
    loads = ladder(priorities=[2, 1, 0], has_tta=True, max_hop_factor=3)
    assert loads == [
        Load(tta=True, active=(0, 1, 2)),
        Load(tta=False, active=(0, 1, 2)),
        Load(tta=False, active=(0, 1)),  # priority 0 first
        Load(tta=False, active=(0,)),  # the last member is never shed
        Load(tta=False, active=(0,), hop_factor=2),
        Load(tta=False, active=(0,), hop_factor=3),
    ]
    assert loads[4].describe(NAMES) == "birdnet; no tta; hop x2"
    # Equal priorities: the member declared later goes first. No TTA: no TTA step. Order is the user's.
    assert [load.active for load in ladder([0, 0], has_tta=False, order=("members",))] == [(0, 1), (0,)]
    assert [load.hop_factor for load in ladder([0], has_tta=True, order=("hop", "tta"))] == [1, 2, 3, 4, 4]


def test_over_budget_sheds_one_step_at_a_time_until_it_fits():
    clocks = Clocks()
    guard = guard_with(clocks, cpu_budget=0.5, settle_seconds=5, hold_seconds=30)
    # Level i costs 1.2, 0.9, 0.6, 0.4: three steps down, then it holds.
    costs = [1.2, 0.9, 0.6, 0.4, 0.3, 0.2]
    with capture_logs() as logs:
        for _ in range(20):
            feed(guard, clocks, 5, costs[guard.level])
    assert guard.level == 3 and guard.load.active == (0,)
    assert [e["event"] for e in logs] == ["load_shed"] * 3
    assert logs[-1]["load"] == "birdnet; no tta" and logs[-1]["budget"] == 0.5
    assert guard.stats()["load_changes"] == 3


def test_load_comes_back_when_the_machine_frees_up():
    clocks = Clocks()
    guard = guard_with(clocks, cpu_budget=0.5, settle_seconds=5, hold_seconds=30)
    busy = [1.2, 0.9, 0.6, 0.4, 0.3, 0.2]  # another process competes: every level costs more
    for _ in range(20):
        feed(guard, clocks, 5, busy[guard.level])
    assert guard.level == 3
    quiet = [0.45, 0.34, 0.22, 0.15, 0.11, 0.08]  # the other process ended: level 0 fits again
    with capture_logs() as logs:
        for _ in range(100):
            feed(guard, clocks, 5, quiet[guard.level])
    assert guard.level == 1, "level 0 (0.45) is above 0.8 x 0.5, level 1 (0.34) fits"
    assert [e["event"] for e in logs] == ["load_restored"] * 2
    assert all(e["predicted"] <= 0.4 for e in logs)


def test_a_restored_level_that_fails_waits_longer_before_the_next_try():
    clocks = Clocks()
    guard = guard_with(clocks, cpu_budget=0.5, settle_seconds=5, hold_seconds=20)
    costs = {0: 0.6, 1: 0.3}
    for _ in range(4):
        feed(guard, clocks, 5, costs[guard.level])
    assert guard.level == 1
    with capture_logs() as logs:
        # The ratio says level 0 would cost 0.6 x 0.2/0.3 = 0.4 <= 0.4, so it tries, and fails again.
        for _ in range(40):
            feed(guard, clocks, 5, {0: 0.6, 1: 0.2}[guard.level])
    events = [e["event"] for e in logs]
    assert events[:2] == ["load_restored", "load_shed"]
    gaps = [i for i, e in enumerate(events) if e == "load_restored"]
    assert len(gaps) < 5, "each failed try doubles the hold"


def test_live_audio_falling_behind_sheds_at_once():
    clocks = Clocks()
    guard = guard_with(clocks, cpu_budget=0.5, max_lag=2.0)
    feed(guard, clocks, 1, 0.1, lag=2.5)  # cheap, but the queue is growing
    assert guard.level == 2


def test_file_input_is_paced_to_the_budget():
    clocks = Clocks()
    guard = guard_with(clocks, live=False, cpu_budget=0.25)
    stop = threading.Event()
    for _ in range(100):
        clocks.cpu += 0.1  # a chunk of 10 s that cost 0.1 CPU-s, analysed in 0.1 s of wall time
        clocks.wall += 0.1
        guard.account(10.0)
        guard.pace(stop)
    assert clocks.wall == pytest.approx(10 / 0.25, rel=0.02), "10 CPU-s at a quarter core take 40 s"
    assert guard.level == 0, "files are never shed"
    assert guard.stats()["paced_seconds"] == pytest.approx(30, rel=0.03)


def test_no_budget_no_steering():
    clocks = Clocks()
    guard = guard_with(clocks)
    feed(guard, clocks, 60, 3.0, lag=10)
    guard.pace(threading.Event())
    assert guard.level == 0 and clocks.wall == 60 and guard.stats()["cpu_cost"] == 3.0


def test_a_member_the_schedule_holds_off_counts_as_shed():
    # bats (priority 0, the first to go) are a night member, and it is day.
    loads = ladder(priorities=[2, 1, 0], has_tta=True, max_hop_factor=3, held_off={2})
    assert [(load.active, load.hop_factor) for load in loads[1:]] == [
        ((0, 1, 2), 1),  # no tta
        ((0, 2), 1),  # frogs go; bats stay listed, the schedule keeps them from running
        ((0, 2), 2),
        ((0, 2), 3),
    ]
    assert loads[2].describe(NAMES, held_off={2}) == "birdnet; no tta"
    # Birds by day only, and it is night: the last member running (bats) is never shed.
    night = ladder(priorities=[2, 1, 0], has_tta=False, order=("members",), held_off={0, 1})
    assert night == [Load(tta=False, active=(0, 1, 2))]


def test_the_guard_sheds_and_restores_only_members_the_schedule_lets_run():
    clocks = Clocks()
    guard = guard_with(clocks, cpu_budget=0.5, settle_seconds=5, hold_seconds=30)
    guard.hold_off(frozenset({2}))  # day: bats held off
    costs = [1.2, 0.9, 0.6, 0.4, 0.3]
    with capture_logs() as logs:
        for _ in range(20):
            feed(guard, clocks, 5, costs[guard.level])
    assert [e["load"] for e in logs] == ["birdnet,frogs; no tta", "birdnet; no tta", "birdnet; no tta; hop x2"]
    quiet = [0.3, 0.2, 0.1, 0.08]
    with capture_logs() as logs:
        for _ in range(100):
            feed(guard, clocks, 5, quiet[guard.level])
    assert [e["load"] for e in logs] == ["birdnet; no tta", "birdnet,frogs; no tta", "birdnet,frogs; tta"]
    assert guard.level == 0 and guard.stats()["load"] == "birdnet,frogs; tta", "bats were never restored"


def test_at_a_change_of_schedule_the_guard_keeps_what_it_shed_of_the_members_still_running():
    clocks = Clocks()
    guard = guard_with(clocks, priorities=(2, 0, 1), cpu_budget=0.5, settle_seconds=5, hold_seconds=30)
    guard.hold_off(frozenset({2}))  # day: bats held off
    for _ in range(3):
        feed(guard, clocks, 5, 2.0)
    assert guard.load.describe(NAMES, guard.held_off) == "birdnet; no tta; hop x2"
    with capture_logs() as logs:
        guard.hold_off(frozenset({0}))  # night: birdnet held off, bats run
    # frogs (the lowest priority) stay shed, and the hop long; bats run, the last member, never shed.
    assert logs[0]["event"] == "load_rescheduled" and logs[0]["load"] == "bats; no tta; hop x2"
    assert guard.load == Load(tta=False, active=(0, 2), hop_factor=2)
