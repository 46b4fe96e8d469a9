"""Local detection files: JSON lines, CSV, Raven selection tables (one per recording) and a Parquet dataset."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Generic, TextIO, TypeVar

from edge.sinks.parquet import ParquetSink, RecorderOf, remove_dataset
from edge.storage.file_names import shown
from edge.types import Detection, Stream
from edge.wire.records import FIELDS, finite, to_json, to_record

FORMATS = ("jsonl", "csv", "raven", "parquet")
PARQUET = "parquet"  # the dataset's folder under the output folder
Item = TypeVar("Item")


class JsonlSink:
    """One JSON record per line, flushed per detection so a killed run keeps what it found."""

    def __init__(self, path: Path, append: bool = True):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a" if append else "w", encoding="utf-8")

    def emit(self, detection: Detection) -> None:
        self._file.write(to_json(to_record(detection)) + "\n")
        self._file.flush()

    def sync(self) -> int:
        """What was written, on the storage: the file's length."""
        self._file.flush()
        os.fsync(self._file.fileno())
        return os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()


def detection_row(detection: Detection) -> dict:
    return finite(to_record(detection))


class CsvSink(Generic[Item]):
    """A CSV file with a header, a row per item (`row` makes it), flushed per item: detections by default."""

    def __init__(
        self,
        path: Path,
        append: bool = True,
        fields: tuple[str, ...] = FIELDS,
        row: Callable[[Item], dict] = detection_row,  # type: ignore[assignment]  # the default is for detections
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.row = row
        new = not append or not path.exists() or path.stat().st_size == 0
        self._file = path.open("a" if append else "w", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=fields)
        if new:
            self._writer.writeheader()

    def emit(self, item: Item) -> None:
        self._writer.writerow(self.row(item))
        self._file.flush()

    def sync(self) -> int:
        """What was written, on the storage: the file's length."""
        self._file.flush()
        os.fsync(self._file.fileno())
        return os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()


RAVEN_COLUMNS = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Common Name",
    "Scientific Name",
    "Confidence",
    "Begin Path",
    "File Offset (s)",
    "Begin File",
    "Begin Date",
    "Begin Clock Time",
)
RAVEN_SUFFIX = ".edge.selection.table.txt"


class RavenSink:
    """A Raven Pro selection table per recording, `<recording>.edge.selection.table.txt` in `folder`.

    Every recording analysed gets its table, with the header only when nothing was detected (as
    BirdNET-Analyzer writes them), so that a folder of tables lists every recording looked at. "Begin Path"
    is the recording's absolute path (`paths`: stream id -> file); "Begin Date" and "Begin Clock Time" are
    in Raven's own formats (2019/05/22, 10:00:07.500), in UTC, empty when the recording time is unknown.
    """

    def __init__(self, folder: Path, paths: Mapping[str, Path] | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.paths = dict(paths or {})
        self._file: TextIO | None = None
        self._stream_id: str | None = None
        self._selection = 0

    def begin(self, stream: Stream) -> None:
        """A recording is being analysed: its table exists from now on, detections or not."""
        if stream.id != self._stream_id:
            self._open(stream.id)

    def emit(self, detection: Detection) -> None:
        stream = detection.window.stream
        self.begin(stream)
        self._selection += 1
        record = finite(to_record(detection))
        started = stream.utc_at(detection.window.start)
        path = self.paths.get(stream.id)
        row = (
            self._selection,
            "Spectrogram 1",
            1,
            f"{record['start_s']:.3f}",
            f"{record['end_s']:.3f}",
            0,
            stream.sample_rate // 2,
            record["common_name"],
            record["scientific_name"],
            f"{record['confidence']:.4f}",
            shown(path.resolve()) if path else stream.id,
            f"{record['start_s']:.3f}",
            shown(path.name) if path else Path(stream.id).name,
            started.strftime("%Y/%m/%d") if started else "",
            started.strftime("%H:%M:%S.") + f"{started.microsecond // 1000:03d}" if started else "",
        )
        assert self._file is not None  # begin() opened it
        self._file.write("\t".join(str(v).replace("\t", " ") for v in row) + "\n")
        self._file.flush()

    def _open(self, stream_id: str) -> None:
        self.close()
        name = Path(stream_id.replace("/", "__")).stem + RAVEN_SUFFIX
        self._file = file = (self.folder / name).open("w", encoding="utf-8")
        file.write("\t".join(RAVEN_COLUMNS) + "\n")
        file.flush()
        self._stream_id = stream_id
        self._selection = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def file_sinks(
    out_dir: Path,
    formats: tuple[str, ...],
    append: bool = True,
    paths: Mapping[str, Path] | None = None,
    recorder_of: RecorderOf | None = None,
) -> list:
    """The sinks for `formats` writing under `out_dir`; `append=False` starts the files afresh, Raven tables
    and the Parquet dataset of earlier runs included. `paths` maps stream ids to files, for Raven's "Begin
    Path" and Parquet's recorder, which `recorder_of` tells from a file name (see ParquetSink)."""
    makers = {
        "jsonl": lambda: JsonlSink(out_dir / "detections.jsonl", append),
        "csv": lambda: CsvSink(out_dir / "detections.csv", append),
        "raven": lambda: RavenSink(out_dir / "raven", paths),
        "parquet": lambda: ParquetSink(out_dir / PARQUET, paths, recorder_of),
    }
    unknown = [f for f in formats if f not in makers]
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    if not append:
        for table in (out_dir / "raven").glob("*" + RAVEN_SUFFIX):
            table.unlink()
        remove_dataset(out_dir / PARQUET)
    return [makers[f]() for f in formats]
