"""A replay's worker process: loads the models once, then analyses the runs its parent sends, one at a time.

The worker talks to its parent over one pipe. It receives a `Run` (None: no more work), and sends a
`RunProgress` after each chunk, for the progress bar, and a `RunDone` with everything the run found once it
ends; a worker that cannot load its models sends `WorkerFailed` and exits. It writes no files: the parent
owns the outputs, so a worker killed part-way leaves nothing behind but a run to do again.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path

from edge.app import logs
from edge.app.replay import Analysis, ReplayOptions, load_analysis
from edge.sources.files import FileSource
from edge.sources.runs import Run
from edge.types import Call, Detection, Stream


@dataclass(frozen=True)
class RunProgress:
    """`seconds` more audio of run `index` analysed, up to stream `stream_id`."""

    index: int
    seconds: float
    stream_id: str


@dataclass(frozen=True)
class RunDone:
    """Run `index` analysed: `records` in the order one process finds them, each a Stream as its analysis
    begins (for the recordings without detections), a Detection or a Call; the files that failed or were damaged
    (stream id, reason); the range filter's weeks."""

    index: int
    records: tuple[Stream | Detection | Call, ...]
    failed: tuple[tuple[str, str], ...]
    damaged: tuple[tuple[str, str], ...]
    weeks: frozenset[int]
    lost: bool = False  # given up: what analysed it died on every attempt (`failed` says so)


@dataclass(frozen=True)
class WorkerFailed:
    """The worker could not start (its models, its species lists): the replay cannot go on."""

    error: Exception


def serve(conn: Connection, models_dir: Path, model_names: list[str], options: ReplayOptions) -> None:
    """The worker process's main: load, then answer runs until told to stop (None) or the pipe closes."""
    logs.configure()  # a process of its own: its log lines look like the parent's
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops us
    try:
        analysis = load_analysis(models_dir, model_names, options)
    except Exception as error:  # noqa: BLE001 - whatever stops the models loading stops the replay
        conn.send(WorkerFailed(error))
        return
    while (run := receive(conn)) is not None:
        for message in analyse(run, analysis, options):
            conn.send(message)


def receive(conn: Connection) -> Run | None:
    try:
        return conn.recv()
    except EOFError:  # the parent is gone
        return None


def analyse(run: Run, analysis: Analysis, options: ReplayOptions) -> Iterator[RunProgress | RunDone]:
    """One run through the pipeline, as the in-process replay takes it: a RunProgress after each chunk, then
    the RunDone. A generator, so that each kind of worker passes the messages on its own way (a pipe, a Ray
    streaming generator)."""
    source = FileSource.listed(list(run.recordings), options.decode)
    records: list[Stream | Detection | Call] = []
    begun: str | None = None
    for chunk in source.chunks():
        for record in analysis.pipeline.push(chunk):
            if isinstance(record, Call):
                records.append(record)
                continue
            assert isinstance(record, Detection)  # no alert classes, no clips in a replay
            records.append(replace(record, window=replace(record.window, audio={})))  # samples stay here
        if chunk.stream.id != begun:
            records.append(chunk.stream)
            begun = chunk.stream.id
        yield RunProgress(run.index, chunk.seconds, chunk.stream.id)
    yield RunDone(
        index=run.index,
        records=tuple(records),
        failed=tuple(source.failed),
        damaged=tuple(source.damaged),
        weeks=frozenset(analysis.species.weeks),
    )
