"""`edge replay --workers N`: runs of recordings analysed in N worker processes, for the job (see `job`).

A run (see `runs`) goes to one worker whole, so every stream is analysed as one process would. The parent owns
the outputs: it is handed a run's records once the run is done (see `job`). A worker that dies
has its run given to a new worker; what it had sent of the run is dropped, so no detection is written twice.
A run whose worker dies twice is reported as failed, and the replay goes on.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from edge.app.output import ReplayOutput
from edge.app.replay import ReplayOptions
from edge.app.run_queue import RunQueue
from edge.app.run_worker import RunDone, RunProgress, WorkerFailed, serve
from edge.sources.runs import Run

# Called in the parent with the pid of the worker that sent the progress (tests kill a worker on its first).
ProgressHook = Callable[[int, RunProgress], None]


@dataclass
class Worker:
    process: BaseProcess
    conn: Connection
    run: Run | None = None
    seconds: float = 0.0  # of its run's audio, shown on the progress bar


class Workers:
    """N worker processes (spawned: nothing of the parent's state is copied into them) fed one run at a time."""

    def __init__(
        self,
        count: int,
        models_dir: Path,
        model_names: list[str],
        options: ReplayOptions,
        output: ReplayOutput,
        on_progress: ProgressHook | None = None,
    ):
        self.count = count
        self.serve_args = (models_dir, model_names, options)
        self.output = output
        self.on_progress = on_progress
        self.context = multiprocessing.get_context("spawn")

    def analyse(self, runs: list[Run]) -> Iterator[RunDone]:
        """Each run's results as it is done, in the order runs finish; the workers are stopped at the end."""
        pending = RunQueue(runs, self.output)
        workers = [self._start() for _ in range(min(self.count, len(runs)))]
        try:
            while pending or any(w.run is not None for w in workers):
                for worker in workers:
                    if worker.run is None and pending:
                        worker.run = pending.take()
                        worker.conn.send(worker.run)
                for conn in wait([w.conn for w in workers]):
                    worker = next(w for w in workers if w.conn is conn)
                    if (done := self._receive(worker, pending)) is not None:
                        yield done
                    if worker.conn.closed:  # dead: a new one takes its place while there is work
                        workers.remove(worker)
                        if pending and len(workers) < self.count:
                            workers.append(self._start())
        finally:
            self._stop(workers)

    def _receive(self, worker: Worker, pending: RunQueue) -> RunDone | None:
        """Handle one message of a worker; the results of a run it finished (or that is given up on)."""
        try:
            message = worker.conn.recv()
        except EOFError:  # the worker died: everything it sent is read, the rest of its run is lost
            return self._lost(worker, pending)
        if isinstance(message, WorkerFailed):
            raise message.error
        if isinstance(message, RunProgress):
            worker.seconds += message.seconds
            self.output.advance(message.seconds, message.stream_id)
            if self.on_progress is not None:
                self.on_progress(worker.process.pid or 0, message)
            return None
        assert isinstance(message, RunDone)
        worker.run, worker.seconds = None, 0.0
        return message

    def _lost(self, worker: Worker, pending: RunQueue) -> RunDone | None:
        """A dead worker's run goes back to the queue (see `RunQueue.lost`)."""
        worker.conn.close()
        worker.process.join()
        run, worker.run = worker.run, None
        return pending.lost(run, worker.seconds, "worker process", exit_code=worker.process.exitcode)

    def _start(self) -> Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=serve, args=(child, *self.serve_args), daemon=True)
        process.start()
        child.close()  # the worker's end lives in the worker alone: its death reads as the end of the pipe
        return Worker(process, parent)

    def _stop(self, workers: list[Worker]) -> None:
        """Tell every idle worker to stop, kill the busy ones, and wait for them all."""
        for worker in workers:
            if worker.run is not None:  # busy when the replay stopped on an error: its run is not wanted
                worker.process.kill()
            else:
                try:
                    worker.conn.send(None)
                except OSError:  # already gone
                    pass
        for worker in workers:
            worker.process.join()
            worker.conn.close()
