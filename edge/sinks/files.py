"""Local detection files: JSON lines, CSV, and Raven selection tables (one per recording)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from edge.records import FIELDS, to_record
from edge.types import Detection

FORMATS = ("jsonl", "csv", "raven")


class JsonlSink:
    """One JSON record per line, flushed per detection so a killed run keeps what it found."""

    def __init__(self, path: Path, append: bool = True):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a" if append else "w", encoding="utf-8")

    def emit(self, detection: Detection) -> None:
        self._file.write(json.dumps(to_record(detection), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class CsvSink:
    def __init__(self, path: Path, append: bool = True):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        new = not append or not path.exists() or path.stat().st_size == 0
        self._file = path.open("a" if append else "w", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=FIELDS)
        if new:
            self._writer.writeheader()

    def emit(self, detection: Detection) -> None:
        self._writer.writerow(to_record(detection))
        self._file.flush()

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
    "Begin Clock Time",
)


class RavenSink:
    """A Raven Pro selection table per recording, `<recording>.edge.selection.table.txt` in `folder`."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._file = None
        self._stream_id: str | None = None
        self._selection = 0

    def emit(self, detection: Detection) -> None:
        record = to_record(detection)
        if record["source"] != self._stream_id:
            self._open(record["source"])
        self._selection += 1
        row = (
            self._selection,
            "Spectrogram 1",
            1,
            f"{record['start_s']:.3f}",
            f"{record['end_s']:.3f}",
            0,
            detection.window.stream.sample_rate // 2,
            record["common_name"],
            record["scientific_name"],
            f"{record['confidence']:.4f}",
            record["source"],
            record["start_utc"] or "",
        )
        self._file.write("\t".join(str(v) for v in row) + "\n")
        self._file.flush()

    def _open(self, stream_id: str) -> None:
        self.close()
        name = Path(stream_id.replace("/", "__")).stem + ".edge.selection.table.txt"
        self._file = (self.folder / name).open("w", encoding="utf-8")
        self._file.write("\t".join(RAVEN_COLUMNS) + "\n")
        self._stream_id = stream_id
        self._selection = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def file_sinks(out_dir: Path, formats: tuple[str, ...], append: bool = True) -> list:
    """The sinks for `formats` writing under `out_dir`; `append=False` starts the files afresh."""
    makers = {
        "jsonl": lambda: JsonlSink(out_dir / "detections.jsonl", append),
        "csv": lambda: CsvSink(out_dir / "detections.csv", append),
        "raven": lambda: RavenSink(out_dir / "raven"),
    }
    unknown = [f for f in formats if f not in makers]
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    return [makers[f]() for f in formats]
