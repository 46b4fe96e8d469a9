"""The detection record: one versioned schema shared by every sink."""

from __future__ import annotations

from datetime import datetime

from edge.types import Detection, Event

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


EVENT_SCHEMA = "edge.event/1"


def event_record(event: Event, box: str) -> dict:
    """A detection event as published: its `id` is shared by the start, updates and end of one event."""
    stream = event.stream
    return {
        "schema": EVENT_SCHEMA,
        "id": event.id,
        "kind": event.kind,
        "box": box,
        "source": stream.id,
        "start_s": round(event.start_seconds, 3),
        "end_s": round(event.end_seconds, 3),
        "start_utc": iso(stream.utc_at(event.start)),
        "end_utc": iso(stream.utc_at(event.end)),
        "scientific_name": event.label.scientific_name,
        "common_name": event.label.common_name,
        "label": event.label.label,
        "confidence": round(event.confidence, 4),
        "model": event.model,
        "model_version": event.model_version,
    }
