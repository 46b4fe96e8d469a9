"""A replay's call table: every call a call detector (BatDetect2) found, one CSV row each.

The columns follow BatDetect2's own CSV output (`det_prob`, `start_time`, `end_time`, `high_freq`, `low_freq`,
`class`, `class_prob`), with the recording (`file`, as the detection files name it), the call's peak frequency,
the class's common name and the model beside them, so that tools written for BatDetect2's tables read it.
Times are seconds from the start of the recording (of its stream, for joined files), frequencies Hz.
"""

from __future__ import annotations

from pathlib import Path

from edge.sinks.files import CsvSink
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


def call_table(path: Path, append: bool = True) -> CsvSink[Call]:
    """`calls.csv`: a header, then a row per call, flushed per call."""
    return CsvSink(path, append, CALL_FIELDS, call_row)
