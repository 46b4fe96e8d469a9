"""Daily files on the box's own storage: what a ranger collects by hand when there is no uplink.

`<folder>/<kind>/<YYYY-MM-DD>.jsonl` for every kind of record (events, health), and `events/<date>.csv` for
events, dated by the UTC day they were written. Each record is flushed and fsync'd before `publish`
returns: a power cut loses nothing that was published, and appends are the only writes (no rewrites to
wear an SD card).
"""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime, timezone
from pathlib import Path

from edge.records import EVENT_FIELDS, finite, to_json

FORMATS = ("jsonl", "csv")


class DailyFiles:
    def __init__(self, folder: Path, formats: tuple[str, ...] = FORMATS, fsync: bool = True, clock=None):
        unknown = set(formats) - set(FORMATS)
        if unknown:
            raise ValueError(f"unknown daily file format(s) {', '.join(sorted(unknown))}; choose from {FORMATS}")
        self.folder = folder
        self.formats = formats
        self.fsync = fsync
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def publish(self, kind: str, record: dict) -> None:
        day = self._clock().date().isoformat()
        if "jsonl" in self.formats:
            self._append(self.folder / kind / f"{day}.jsonl", to_json(record) + "\n")
        if "csv" in self.formats and kind == "events":
            path = self.folder / kind / f"{day}.csv"
            line = io.StringIO()
            writer = csv.DictWriter(line, fieldnames=EVENT_FIELDS, extrasaction="ignore")
            if not path.exists() or path.stat().st_size == 0:
                writer.writeheader()
            writer.writerow(finite(record))
            self._append(path, line.getvalue())

    def _append(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+b") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a line torn by a power cut: end it, rather than glue a record to it
                    text = "\n" + text
            f.write(text.encode("utf-8"))
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())

    def close(self) -> None:
        pass  # every record is on disk when publish returns
