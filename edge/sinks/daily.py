"""Daily files on the box's own storage: what a ranger collects by hand when there is no uplink.

`<folder>/<kind>/<YYYY-MM-DD>.jsonl` for every kind of record (events, health), and `events/<date>.csv` for
events, dated by the UTC day they were published. Each record is flushed and fsync'd before `publish`
returns: a power cut loses nothing that was published, and appends are the only writes (no rewrites to
wear an SD card). A record is written whole or not at all: when a full or read-only disk refuses part of it,
what was appended of it is cut off again before the error is raised, so that writing it again later (edge.sinks.
outputs holds it meanwhile) leaves it in each file once.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path

from edge.wire.records import EVENT_FIELDS, finite, to_json

FORMATS = ("jsonl", "csv")


class DailyFiles:
    def __init__(self, folder: Path, formats: tuple[str, ...] = FORMATS, fsync: bool = True, clock=None):
        unknown = set(formats) - set(FORMATS)
        if unknown:
            raise ValueError(f"unknown daily file format(s) {', '.join(sorted(unknown))}; choose from {FORMATS}")
        self.folder = folder
        self.formats = formats
        self.fsync = fsync
        self._clock = clock or (lambda: datetime.now(UTC))

    def today(self) -> str:
        return self._clock().date().isoformat()

    def publish(self, kind: str, record: dict, day: str | None = None) -> None:
        """Append `record` to the files of `day` (default: today); OSError when the disk refuses it."""
        day = day or self.today()
        appended: list[tuple[Path, int]] = []  # (file, its size before): undone if a later file fails
        try:
            if "jsonl" in self.formats:
                path = self.folder / kind / f"{day}.jsonl"
                appended.append((path, self._append(path, to_json(record) + "\n")))
            if "csv" in self.formats and kind == "events":
                path = self.folder / kind / f"{day}.csv"
                line = io.StringIO()
                writer = csv.DictWriter(line, fieldnames=EVENT_FIELDS, extrasaction="ignore")
                if not path.exists() or path.stat().st_size == 0:
                    writer.writeheader()
                writer.writerow(finite(record))
                appended.append((path, self._append(path, line.getvalue())))
        except OSError:
            for path, size in appended:
                cut_back(path, size)
            raise

    def _append(self, path: Path, text: str) -> int:
        """Append `text` whole, or raise with the file cut back to its old size. Returns that old size.
        Unbuffered: a failed write must not leave bytes in a buffer that closing the file would write later."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                text = "\n" + text  # a line torn by a power cut: end it, rather than glue a record to it
            try:
                data = memoryview(text.encode("utf-8"))
                while data:
                    data = data[os.write(fd, data) :]
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                cut_back(fd, size)
                raise
        finally:
            os.close(fd)
        return size

    def close(self) -> None:
        pass  # every record is on disk when publish returns


def cut_back(file, size: int) -> None:
    """Truncate `file` (a path or a file descriptor) to `size` bytes: a part of a record the disk took before
    refusing the rest must not stay as a torn line. Best effort: a read-only disk took nothing anyway."""
    try:
        os.truncate(file, size)
    except OSError:
        pass
