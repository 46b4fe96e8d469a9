"""A replay's call table: every call a call detector (BatDetect2) found, one CSV row each.

The columns follow BatDetect2's own CSV output (`det_prob`, `start_time`, `end_time`, `high_freq`, `low_freq`,
`class`, `class_prob`), with the recording (`file`, as the detection files name it), the call's peak frequency,
the class's common name and the model beside them, so that tools written for BatDetect2's tables read it.
Times are seconds from the start of the recording (of its stream, for joined files), frequencies Hz.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from edge.types import Call

CALL_FIELDS = (
    "file",
    "start_time",
    "end_time",
    "low_freq",
    "high_freq",
    "peak_freq",
    "det_prob",
    "class",
    "class_prob",
    "common_name",
    "model",
)


def call_row(call: Call) -> dict:
    return {
        "file": call.stream.id,
        "start_time": round(call.start_s, 4),
        "end_time": round(call.end_s, 4),
        "low_freq": int(call.low_freq),
        "high_freq": int(call.high_freq),
        "peak_freq": int(call.peak_freq),
        "det_prob": round(call.score, 3),
        "class": call.label.scientific_name,
        "class_prob": round(call.probability, 3),
        "common_name": call.label.common_name,
        "model": call.model,
    }


class CallTable:
    """`calls.csv`: a header, then a row per call, flushed per call; `sync` gives its length for the ledger."""

    def __init__(self, path: Path, append: bool = True):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        new = not append or not path.exists() or path.stat().st_size == 0
        self._file = path.open("a" if append else "w", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=CALL_FIELDS)
        if new:
            self._writer.writeheader()

    def emit(self, call: Call) -> None:
        self._writer.writerow(call_row(call))
        self._file.flush()

    def sync(self) -> int:
        self._file.flush()
        os.fsync(self._file.fileno())
        return os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()
