"""The detection record: one versioned schema shared by every sink."""

from __future__ import annotations

from datetime import datetime

from edge.types import Detection

SCHEMA = "edge.detection/1"

FIELDS = (
    "schema",
    "source",
    "start_s",
    "end_s",
    "start_utc",
    "end_utc",
    "scientific_name",
    "common_name",
    "label",
    "confidence",
    "model",
    "model_version",
)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


def to_record(detection: Detection) -> dict:
    """Offsets in seconds from the start of the source; UTC times only when the recording time is known."""
    window = detection.window
    stream = window.stream
    return {
        "schema": SCHEMA,
        "source": stream.id,
        "start_s": round(window.start_seconds, 3),
        "end_s": round(window.end_seconds, 3),
        "start_utc": iso(stream.utc_at(window.start)),
        "end_utc": iso(stream.utc_at(window.end)),
        "scientific_name": detection.label.scientific_name,
        "common_name": detection.label.common_name,
        "label": detection.label.label,
        "confidence": round(detection.confidence, 4),
        "model": detection.model,
        "model_version": detection.model_version,
    }
