"""Where a replay's detections go, in the one process that writes them."""

from __future__ import annotations

from pathlib import Path

import structlog

from edge.app.progress import job_progress
from edge.app.replay import ReplayOptions
from edge.sinks.files import CsvSink, JsonlSink, RavenSink, file_sinks
from edge.sources.runs import Run
from edge.types import Detection, Sink, Stream

log = structlog.get_logger(__name__)

LONG_INPUT_SECONDS = 60.0  # shorter replays show no progress bar


class ReplayOutput:
    """Where a replay's detections go: the detection files, the summary and the progress bar, in the one process
    that writes, whichever process analysed them. A recording's Raven table exists once `begin` names it.

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
    ):
        self.out = out
        if not new:
            cut_back(out, lengths or {})
        self.files = file_sinks(out, options.formats, append=not new, paths=paths)
        self.sinks: list[Sink] = list(self.files)
        self.tables = [sink for sink in self.files if isinstance(sink, RavenSink)]
        self.seconds = 0.0
        self.done_files = 0
        self.bar, self.task = job_progress(total, files, shown=progress and total >= LONG_INPUT_SECONDS)

    def begin(self, stream: Stream) -> None:
        for table in self.tables:
            table.begin(stream)

    def emit(self, detection: Detection) -> None:
        for sink in self.sinks:
            sink.emit(detection)

    def advance(self, seconds: float, stream_id: str) -> None:
        self.seconds += seconds
        self.bar.update(self.task, advance=seconds, description=stream_id[-40:])

    def files_done(self, count: int) -> None:
        self.done_files += count
        self.bar.update(self.task, files_done=self.done_files)

    def commit(self, run: Run) -> dict[str, int]:
        """The detection files synced to the storage after a run's detections: their lengths, by name under
        `out`, for the ledger."""
        lengths = {}
        for sink in self.files:
            if isinstance(sink, (JsonlSink, CsvSink)):
                lengths[sink.path.relative_to(self.out).as_posix()] = sink.sync()
        return lengths

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def cut_back(out: Path, lengths: dict[str, int]) -> None:
    """Each detection file cut back to the length the ledger committed."""
    for name, length in lengths.items():
        path = out / name
        size = path.stat().st_size if path.exists() else 0
        if size > length:
            log.warning("replay_output_cut_back", file=name, length=length, dropped_bytes=size - length)
            with path.open("r+b") as f:
                f.truncate(length)
        elif size < length:
            log.warning("replay_output_shorter_than_ledger", file=name, length=length, size=size)
