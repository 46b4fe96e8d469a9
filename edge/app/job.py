"""`edge replay`: a resumable job over an archive of recordings, analysed in this process or by workers.

The recordings are listed and cut into runs (see `runs`); those the ledger under `--out` already knows are
left out. A pool analyses the runs (this process, worker processes or a Ray cluster) and hands back each
run's records once it is done; this process alone writes them, then commits the run to the ledger. The
detection files hold what one process writes, in the order runs finish: identical after sorting, whatever
the pool.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from edge.app.ledger import Ledger, Outcome, key
from edge.app.output import ReplayOutput
from edge.app.replay import ReplayOptions, ReplayResult, finds_calls, load_analysis
from edge.app.run_queue import Pool
from edge.app.run_worker import RunDone, analyse
from edge.app.workers import ProgressHook, Workers
from edge.sinks.summary import Summary
from edge.sources.files import FileSource, list_recordings
from edge.sources.runs import Run, joined_runs
from edge.types import Call, Detection

log = structlog.get_logger(__name__)

PARQUET_BATCH_ROWS = 50_000  # about 50 MB held in memory; far fewer files than one per recording


class InProcess:
    """The runs analysed one after the other in this process (a pool's arguments; `count` is 1)."""

    def __init__(
        self,
        count: int | None,
        models_dir: Path,
        model_names: list[str],
        options: ReplayOptions,
        output: ReplayOutput,
        on_progress: ProgressHook | None = None,
    ):
        self.analysis = load_analysis(models_dir, model_names, options)
        self.options = options
        self.output = output

    def analyse(self, runs: list[Run]) -> Iterator[RunDone]:
        for run in runs:
            for message in analyse(run, self.analysis, self.options):
                if isinstance(message, RunDone):
                    yield message
                else:
                    self.output.advance(message.seconds, message.stream_id)


def replay(
    paths: list[Path],
    models_dir: Path,
    model_names: list[str],
    out: Path,
    options: ReplayOptions,
    workers: int | None = 1,
    fresh: bool = False,
    progress: bool = False,
    on_progress: ProgressHook | None = None,
    in_process: bool | None = None,
    pool: Callable[..., Pool] | None = None,
) -> ReplayResult:
    """The recordings under `paths` not yet done in `out` analysed by `workers` processes (1: this one, unless
    `in_process` is False), or by another `pool` (made with Workers' arguments, e.g. RayWorkers; `workers`
    None lets it choose how many), their detections added to the files under `out`. Raises SettingsChanged
    when `out` holds a job with other settings, ModelError or ValueError when the models or species lists
    cannot be loaded."""
    started = time.monotonic()
    with Ledger.open(out, settings_of(model_names, options), fresh) as ledger:
        recordings = list_recordings(paths, options.decode.naive_zone)
        todo, skipped = pending(recordings, ledger)
        runs = joined_runs(todo, options.decode)
        total = FileSource.listed(todo, options.decode).total_seconds()
        output = ReplayOutput(
            out,
            options,
            dict(recordings_by_id(recordings)),
            total,
            len(todo),
            progress,
            ledger.lengths(),
            ledger.new,
            calls=finds_calls(models_dir, model_names),
        )
        finished: list[RunDone] = []
        committer = Committer(output, ledger)
        with output.bar:
            try:
                local = InProcess if (workers == 1 if in_process is None else in_process) else Workers
                make: Callable[..., Pool] = pool or local
                for done in make(workers, models_dir, model_names, options, output, on_progress).analyse(runs):
                    committer.add(runs[done.index], done)
                    finished.append(done)
            finally:
                committer.commit()  # what was written whole is kept, also after Ctrl-C or an error
                output.close()
        return result_of(ledger, recordings, skipped, finished, output, time.monotonic() - started)


def settings_of(model_names: list[str], options: ReplayOptions) -> dict:
    """What decides a job's detections: resuming it with anything else would mix two analyses."""
    decode, species = options.decode, options.species
    return {
        "models": list(model_names),
        "window": options.window.seconds,
        "hop": options.window.hop,
        "crop_stride": options.member.crop_stride,
        "sensitivity": options.member.sensitivity,
        "min_conf": options.detector.min_confidence,
        "top_k": options.detector.top_k,
        "channel": decode.channel,
        "timezone": str(decode.naive_zone),
        "join_gap": decode.join_gap,
        "formats": sorted(options.formats),
        "resampler": options.resampler,
        "species": {
            "latitude": species.latitude,
            "longitude": species.longitude,
            "range_threshold": species.range_threshold,
            "week": species.week,
            "include": list(species.include),
            "exclude": list(species.exclude),
            "thresholds_file": str(species.thresholds_file) if species.thresholds_file else None,
        },
        # Named only when used: ledgers of replays made before it existed stay valid.
        **({"time_expansion": decode.time_expansion} if decode.time_expansion != 1 else {}),
    }


def pending(recordings: list[tuple[Path, str]], ledger: Ledger) -> tuple[list[tuple[Path, str]], int]:
    """The recordings the ledger does not know, and how many it does. One it knows that has changed since
    (size or mtime) is not analysed again, as its detections are in the files already: it is logged."""
    known = ledger.known()
    todo = []
    for path, stream_id in recordings:
        entry = known.get(key(path))
        if entry is None:
            todo.append((path, stream_id))
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        if (stat.st_size, stat.st_mtime_ns) != (entry.size, entry.mtime_ns):
            log.warning("replay_recording_changed", recording=stream_id, state=entry.state, analysed_again=False)
    return todo, len(recordings) - len(todo)


def recordings_by_id(recordings: list[tuple[Path, str]]) -> Iterator[tuple[str, Path]]:
    for path, stream_id in recordings:
        yield stream_id, path


class Committer:
    """Runs written as they are done, and recorded in the ledger in batches.

    Each run's records are written and the files synced at once; the ledger commits the runs written so far
    when the Parquet rows waiting reach `PARQUET_BATCH_ROWS` (their files are written first), after every run
    without Parquet, and at the end, Ctrl-C included. A run written but not committed when the process dies
    is cut off the files by the next replay and analysed again."""

    def __init__(self, output: ReplayOutput, ledger: Ledger):
        self.output = output
        self.ledger = ledger
        self.outcomes: list[Outcome] = []
        self.lengths: dict[str, int] = {}
        self.tally = Summary()
        self.broken = False  # a write failed part-way: nothing more is committed

    def add(self, run: Run, done: RunDone) -> None:
        """A run written whole (Ctrl-C waits for it), and committed when a batch is full."""
        with interrupts_held():
            try:
                self._write(run, done)
            except BaseException:
                self.broken = True
                raise
            rows = self.output.parquet_rows()
            if rows is None or rows >= PARQUET_BATCH_ROWS:
                self.commit()

    def _write(self, run: Run, done: RunDone) -> None:
        # Counted as written: a write that fails part-way breaks the committer, so this tally is never committed.
        for record in done.records:
            if isinstance(record, Detection):
                self.output.emit(record)
                self.tally.emit(record)
            elif isinstance(record, Call):
                self.output.emit_call(record)
            else:
                self.output.begin(record)
        self.lengths = self.output.end_run()
        self.outcomes += outcomes(run, done)  # from here on, the run is whole in the files
        self.output.files_done(len(run.recordings))

    def commit(self) -> None:
        """The runs written whole since the last commit recorded (their Parquet files written first)."""
        if not self.outcomes or self.broken:
            return
        with interrupts_held():
            parts = self.output.write_parquet(f"part-{self.ledger.batches() + 1:06d}")
            self.ledger.commit(self.outcomes, self.lengths | parts, self.tally.species.values())
            self.outcomes, self.tally = [], Summary()


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C held back until the block ends (it then stops the replay as usual): a run is written whole and a
    batch committed whole, or not at all."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Ctrl-C reaches the main thread alone
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def outcomes(run: Run, done: RunDone) -> list[Outcome]:
    counts = Counter(record.window.stream.id for record in done.records if isinstance(record, Detection))
    failed, damaged = dict(done.failed), dict(done.damaged)
    state = "quarantined" if done.lost else "failed"
    return [
        Outcome(
            path,
            stream_id,
            state if stream_id in failed else "done",
            failed.get(stream_id) or damaged.get(stream_id),
            counts[stream_id],
        )
        for path, stream_id in run.recordings
    ]


def result_of(
    ledger: Ledger,
    recordings: list[tuple[Path, str]],
    skipped: int,
    finished: list[RunDone],
    output: ReplayOutput,
    wall_seconds: float,
) -> ReplayResult:
    """What this replay did, and the species of the whole job so far (earlier replays into `out` included)."""
    ordered = sorted(finished, key=lambda done: done.index)
    return ReplayResult(
        summary=Summary.of(ledger.tally()),
        recordings=len(recordings),
        failed=[f for done in ordered for f in done.failed],
        audio_seconds=output.seconds,
        damaged=[d for done in ordered for d in done.damaged],
        species_weeks=tuple(sorted(set().union(*(done.weeks for done in ordered)))),
        skipped=skipped,
        wall_seconds=wall_seconds,
        states=ledger.states(),
    )
