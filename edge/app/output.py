"""Where a replay's detections go, in the one process that writes them."""

from __future__ import annotations

from pathlib import Path

import structlog

from edge.app.progress import job_progress
from edge.app.replay import ReplayOptions
from edge.sinks.calls import call_table
from edge.sinks.files import PARQUET, CsvSink, JsonlSink, RavenSink, file_sinks
from edge.sinks.parquet import ParquetSink
from edge.sources.recording_time import recorder_of
from edge.types import Call, Detection, Sink, Stream

log = structlog.get_logger(__name__)

CALLS_FILE = "calls.csv"  # with a call detector among the models
LONG_INPUT_SECONDS = 60.0  # shorter replays show no progress bar


class ReplayOutput:
    """Where a replay's detections go: the detection files and the progress bar, in the one process that
    writes, whichever process analysed them. A recording's Raven table exists once `begin` names it.

    `lengths` are the detection files' lengths as the ledger committed them: a file grown past its length was
    being written when a replay was killed, and is cut back to it before anything is added. `new`: no
    earlier replay into `out` is kept, so the files start afresh."""

    def __init__(
        self,
        out: Path,
        options: ReplayOptions,
        paths: dict[str, Path],
        total: float,
        files: int,
        progress: bool,
        lengths: dict[str, int] | None = None,
        new: bool = True,
        calls: bool = False,
    ):
        self.out = out
        if not new:
            cut_back(out, lengths or {})
        self.files = file_sinks(out, options.formats, append=not new, paths=paths, recorder_of=recorder_of)
        self.sinks: list[Sink] = list(self.files)
        self.tables = [sink for sink in self.files if isinstance(sink, RavenSink)]
        self.parquet = next((sink for sink in self.files if isinstance(sink, ParquetSink)), None)
        self.calls = call_table(out / CALLS_FILE, append=not new) if calls else None
        self.seconds = 0.0
        self.done_files = 0
        self.bar, self.task = job_progress(total, files, shown=progress and total >= LONG_INPUT_SECONDS)

    def begin(self, stream: Stream) -> None:
        for table in self.tables:
            table.begin(stream)

    def emit(self, detection: Detection) -> None:
        for sink in self.sinks:
            sink.emit(detection)

    def emit_call(self, call: Call) -> None:
        if self.calls is not None:
            self.calls.emit(call)

    def advance(self, seconds: float, stream_id: str) -> None:
        self.seconds += seconds
        self.bar.update(self.task, advance=seconds, description=stream_id[-40:])

    def files_done(self, count: int) -> None:
        self.done_files += count
        self.bar.update(self.task, files_done=self.done_files)

    def end_run(self) -> dict[str, int]:
        """A run's detections are all emitted: the detection files synced to the storage, and their lengths by
        name under `out`, for the ledger."""
        if self.parquet is not None:
            self.parquet.end_run()
        tables = [sink for sink in [*self.files, self.calls] if isinstance(sink, (JsonlSink, CsvSink))]
        return {self.name(sink.path): sink.sync() for sink in tables}

    def parquet_rows(self) -> int | None:
        """Rows of ended runs waiting for `write_parquet`; None without Parquet."""
        return None if self.parquet is None else self.parquet.rows

    def write_parquet(self, name: str) -> dict[str, int]:
        """The ended runs' rows written as Parquet files `name`; their sizes by name under `out`."""
        if self.parquet is None:
            return {}
        return {self.name(path): path.stat().st_size for path in self.parquet.write(name)}

    def name(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        if self.calls is not None:
            self.calls.close()


def cut_back(out: Path, lengths: dict[str, int]) -> None:
    """Each detection file cut back to the length the ledger committed, and the Parquet files it does not know
    (written by a replay killed before its commit) removed."""
    for parquet in sorted((out / PARQUET).rglob("*.parquet*")):
        if parquet.relative_to(out).as_posix() not in lengths:
            log.warning("replay_output_removed", file=parquet.relative_to(out).as_posix(), reason="not committed")
            parquet.unlink()
    for name, length in lengths.items():
        if name.startswith(PARQUET + "/"):
            continue
        path = out / name
        size = path.stat().st_size if path.exists() else 0
        if size > length:
            log.warning("replay_output_cut_back", file=name, length=length, dropped_bytes=size - length)
            with path.open("r+b") as f:
                f.truncate(length)
        elif size < length:
            log.warning("replay_output_shorter_than_ledger", file=name, length=length, size=size)
