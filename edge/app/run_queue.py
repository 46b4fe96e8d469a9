"""The runs of a replay still to analyse, shared by the pools that analyse them: worker processes on this
machine (`workers`) or Ray actors on a cluster (`ray_workers`).

A pool takes runs from the front of the queue. A run lost with whatever analysed it (a process, an actor, a
node that died) goes back to the front, the progress bar rewound by what it had shown of it; a run lost
`ATTEMPTS` times is given up, each of its files reported as failed, and the replay goes on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

import structlog

from edge.app.output import ReplayOutput
from edge.app.run_worker import RunDone
from edge.sources.runs import Run

log = structlog.get_logger(__name__)

ATTEMPTS = 2  # a run lost this many times is given up


class Pool(Protocol):
    """Analyses runs side by side, its outputs written by the caller."""

    def analyse(self, runs: list[Run]) -> Iterator[RunDone]:
        """Each run's results as it is done, in the order runs finish; what the pool started is stopped at the
        end. Raises what stopped the models loading (ModelError, ValueError)."""
        ...


class RunQueue:
    """Runs waiting for a worker, in listing order; a lost run goes first."""

    def __init__(self, runs: list[Run], output: ReplayOutput):
        self.pending = deque(runs)
        self.output = output
        self.attempts: dict[int, int] = {}

    def __bool__(self) -> bool:
        return bool(self.pending)

    def take(self) -> Run:
        return self.pending.popleft()

    def lost(self, run: Run | None, seconds: float, worker: str, **why: Any) -> RunDone | None:
        """`run` (None: the worker had none) lost after `seconds` of it were shown, by a `worker` ("worker
        process", "Ray actor") that died for reasons `why` (logged). The run is put back; on its last attempt
        it is given up: the results naming its files as failed."""
        self.output.advance(-seconds, "")  # the run starts again from nothing
        if run is None:
            return None
        attempts = self.attempts[run.index] = self.attempts.get(run.index, 0) + 1
        log.warning("replay_run_lost", run=run.index, attempt=attempts, worker=worker, **why)
        if attempts < ATTEMPTS:
            self.pending.appendleft(run)
            return None
        reason = f"the {worker} analysing it died {attempts} times"
        failed = tuple((stream_id, reason) for _, stream_id in run.recordings)
        return RunDone(run.index, (), failed, (), frozenset(), lost=True)
