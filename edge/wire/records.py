"""The detection record: one versioned schema shared by every sink."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from importlib.metadata import version
from typing import overload

from edge.types import Alert, Detection, Event, Label, StreamSpan, iso_ms, utc_now

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


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: datetime | None) -> str | None: ...
def iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_ms(moment)


def observation(span: StreamSpan, label: Label, confidence: float, model: str, model_version: str) -> dict:
    """Where and when in a source something was heard, what, and by which model: shared by every record.

    Offsets in seconds from the start of the source; UTC times only when the recording time is known."""
    stream = span.stream
    return {
        "source": stream.id,
        "start_s": round(span.start_seconds, 3),
        "end_s": round(span.end_seconds, 3),
        "start_utc": iso(stream.utc_at(span.start)),
        "end_utc": iso(stream.utc_at(span.end)),
        "scientific_name": label.scientific_name,
        "common_name": label.common_name,
        "label": label.label,
        "confidence": round(confidence, 4),
        "model": model,
        "model_version": model_version,
    }


def to_record(detection: Detection) -> dict:
    """One class in one window, as `edge replay` writes it."""
    d = detection
    return {"schema": SCHEMA, **observation(d.window, d.label, d.confidence, d.model, d.model_version)}


EVENT_SCHEMA = "edge.event/1"
# An alert is one window of a threat class (edge.screen.alerts); /1 was a copy of the event record.
ALERT_SCHEMA = "edge.alert/2"
HEALTH_SCHEMA = "edge.health/1"
STATUS_SCHEMA = "edge.status/1"
# As published: the outputs add the box's sequence number to every record.
# `clip` (added within /1: consumers ignore fields they do not know) is the event's audio clip, relative to the
# box's clip folder, once written; null before, and when clips are off or the clip was refused.
EVENT_FIELDS = ("schema", "id", "kind", "box", *FIELDS[1:], "clip", "seq")


def event_record(event: Event, box: str) -> dict:
    """A detection event as published: its `id` is shared by the start, updates and end of one event."""
    e = event
    return {
        "schema": EVENT_SCHEMA,
        "id": e.id,
        "kind": e.kind,
        "box": box,
        **observation(e, e.label, e.confidence, e.model, e.model_version),
        "clip": e.clip,
        # A bat pass (an event of a call detector's species) says how many calls, and where their energy is.
        **({"calls": e.calls, "peak_freq_hz": round(e.peak_freq or 0.0)} if e.calls else {}),
    }


def alert_record(alert: Alert, box: str, detected: datetime) -> dict:
    """An alert as published; `detected` is when the box heard it (wall clock), for the station's delay."""
    a = alert
    return {
        "schema": ALERT_SCHEMA,
        "id": a.id,
        "kind": "alert",
        "box": box,
        "alert_class": a.alert_class,
        **observation(a.window, a.label, a.confidence, a.model, a.model_version),
        "threshold": a.threshold,
        "held_back": a.held_back,
        "detected_utc": iso(detected),
    }


def record_key(record: dict) -> str:
    """What identifies an event record across a re-analysis of its recording: the event, the kind, how far."""
    return f"{record['schema']}/{record['id']}/{record['kind']}/{record['end_s']}"


class NonFiniteNumber(ValueError):
    """A record holding NaN or an infinity: a bug upstream, never written (JSON has no such numbers)."""


def finite(record: dict) -> dict:
    """`record`, checked to hold only finite numbers (in nested dicts and lists too); NonFiniteNumber names
    the first field that does not."""
    for name, value in record.items():
        bad = non_finite_in(value)
        if bad is not None:
            raise NonFiniteNumber(f"record field {name!r} holds {bad}: not written ({record.get('schema')})")
    return record


def non_finite_in(value) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return next((bad for bad in map(non_finite_in, value) if bad is not None), None)
    return None


def to_json(record: dict) -> str:
    """The record as one line of JSON; NonFiniteNumber when it holds NaN or an infinity."""
    return json.dumps(finite(record), ensure_ascii=False, allow_nan=False)


def health_record(box: str, measured: Mapping[str, object]) -> dict:
    """The periodic health record: what the box measured (edge.app.health), under the envelope every record has."""
    return {"schema": HEALTH_SCHEMA, "box": box, "time_utc": utc_now(), **measured}


def status_payload(box: str, state: str, place: tuple[float, float] | None = None, **figures: int) -> str:
    """The retained status record (online, offline as the broker's last will, stopped). `place`, the box's
    (latitude, longitude) when its configuration gives them, puts it on the station's map; `stopped` carries
    the uplink's final figures (outbox_pending, mqtt_sent), which are newer than the last health record's."""
    position = {} if place is None else {"latitude": place[0], "longitude": place[1]}
    return json.dumps(
        {
            "schema": STATUS_SCHEMA,
            "box": box,
            "state": state,
            "time_utc": utc_now(),
            "version": version("edge"),
            **position,
            **figures,
        }
    )
