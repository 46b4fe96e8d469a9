"""What a box of this version publishes on each topic: the schemas, their fields' types and bounds.

Strict but not brittle: a field a box may have added since (consumers ignore fields they do not know) passes,
but every known field must have its type and range, every required one must be there, and a schema this
station does not know is refused by name (its records wait in the station's `rejected` table).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime

from edge.wire.clips import CLIP_SCHEMA
from edge.wire.mqtt import box_id_problem
from edge.wire.records import ALERT_SCHEMA, EVENT_SCHEMA, HEALTH_SCHEMA, STATUS_SCHEMA

# Why a value does not fit (None when it does).
Check = Callable[[object], str | None]

MAX_INTEGER = 2**63 - 1  # SQLite's INTEGER
MAX_ID = 128  # an event id is a UUID (36 characters)
MAX_TEXT = 1024  # names, labels, versions
MAX_PATH = 4096  # a source or clip path (Linux's PATH_MAX)
MAX_SECONDS = 1e10  # offsets into a stream: three centuries of audio
MAX_CLIP_ID = 64  # a clip is named by its event's or alert's id (a UUID)
# A clip's audio: 4 MiB is over 40 s of 48 kHz FLAC; a box sends far less (and messages.py caps the rest).
MAX_CLIP_BYTES = 4 * 1024 * 1024
# A clip's length: a box cuts its clips at 30 s (plus a few seconds around the event) unless told otherwise.
MAX_CLIP_SECONDS = 600.0
# C0 and C1 control characters and lone surrogates: they break lines, terminals, CSV cells and UTF-8 columns.
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
STATES = ("online", "offline", "stopped")


def shown(value: object, limit: int = 60) -> str:
    """A value as a rejection reason quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def text(limit: int = MAX_TEXT, empty: bool = True) -> Check:
    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return f"is not text: {shown(value)}"
        if len(value) > limit:
            return f"is longer than {limit} characters ({len(value)})"
        if not value and not empty:
            return "is empty"
        if UNPRINTABLE.search(value):
            return f"holds a control character or a lone surrogate: {shown(value)}"
        return None

    return check


def number(low: float, high: float) -> Check:
    def check(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"is not a number: {shown(value)}"
        return None if low <= value <= high else f"{shown(value)} is not within [{low:g}, {high:g}]"

    return check


def whole(low: int = 0, high: int = MAX_INTEGER) -> Check:
    def check(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"is not a whole number: {shown(value)}"
        return None if low <= value <= high else f"{shown(value)} is not within [{low}, {high}]"

    return check


def one_of(*values: str) -> Check:
    def check(value: object) -> str | None:
        return None if value in values else f"{shown(value)} is none of {', '.join(values)}"

    return check


def utc_time(value: object) -> str | None:
    """An ISO 8601 time with its offset, as the box writes it (2026-11-23T09:00:00.000+00:00)."""
    problem = text(64, empty=False)(value)
    if problem:
        return problem
    try:
        moment = datetime.fromisoformat(str(value))  # a str: text() checked it
    except ValueError:
        return f"is not an ISO 8601 time: {shown(value)}"
    return None if moment.utcoffset() is not None else f"has no UTC offset: {shown(value)}"


def box_id(value: object) -> str | None:
    return text(200)(value) or box_id_problem(str(value))  # a str: text() checked it


def optional(check: Check) -> Check:
    """The field may be null (it is always allowed to be missing unless required)."""
    return lambda value: None if value is None else check(value)


SEQ = whole(1)
COUNT = optional(whole(0))
AMOUNT = optional(number(0, math.inf))
OBSERVATION = {
    "source": text(MAX_PATH),
    "start_s": number(0, MAX_SECONDS),
    "end_s": number(0, MAX_SECONDS),
    "start_utc": optional(utc_time),
    "end_utc": optional(utc_time),
    "scientific_name": text(),
    "common_name": text(),
    "label": text(),
    "confidence": number(0, 1),
    "model": text(),
    "model_version": text(),
}
EVENT = {
    "id": text(MAX_ID, empty=False),
    "kind": one_of("start", "update", "end"),
    "box": box_id,
    "seq": SEQ,
    **OBSERVATION,
    "clip": optional(text(MAX_PATH)),
    # A bat pass's calls and their median peak frequency, within edge.event/1 (events of a call detector).
    "calls": COUNT,
    "peak_freq_hz": optional(number(0, 1_000_000)),
}
EVENT_REQUIRED = tuple(name for name in EVENT if name not in ("clip", "calls", "peak_freq_hz"))
ALERT = {
    **{name: check for name, check in EVENT.items() if name not in ("clip", "calls", "peak_freq_hz")},
    "kind": one_of("alert"),
    "alert_class": text(),
    "threshold": number(0, 1),
    "held_back": whole(0),
    "detected_utc": utc_time,
}
HEALTH = {
    "box": box_id,
    "time_utc": utc_time,
    "seq": SEQ,
    "clock": optional(text(64)),
    **dict.fromkeys(
        (
            "uptime_s",
            "audio_seconds",
            "interval_s",
            "interval_audio_s",
            "real_time_factor",
            "cpu_percent",
            "rss_mb",
            "disk_free_mb",
            "queue_seconds",
        ),
        AMOUNT,
    ),
    "disk_free_percent": optional(number(0, 100)),
    **dict.fromkeys(
        (
            "windows",
            "events",
            "outbox_pending",
            "files_pending",
            "files_done",
            "files_quarantined",
            "input_overflows",
            "dropped_blocks",
            "restarts",
        ),
        COUNT,
    ),
}

# Per topic: each schema it may carry, with its fields and those a box of that schema always sends.
SCHEMAS: dict[str, dict[str, tuple[dict[str, Check], tuple[str, ...]]]] = {
    "events": {EVENT_SCHEMA: (EVENT, EVENT_REQUIRED)},
    # Boxes before edge.alert/2 sent a copy of the event record.
    "alerts": {ALERT_SCHEMA: (ALERT, tuple(ALERT)), "edge.alert/1": (EVENT, EVENT_REQUIRED)},
    "health": {HEALTH_SCHEMA: (HEALTH, ("box", "time_utc", "seq"))},
    "status": {
        STATUS_SCHEMA: (
            {
                "box": box_id,
                "state": one_of(*STATES),
                "time_utc": optional(utc_time),
                "version": optional(text(64)),
                "seq": optional(SEQ),
                "latitude": optional(number(-90, 90)),
                "longitude": optional(number(-180, 180)),
                "outbox_pending": COUNT,
                "mqtt_sent": COUNT,
            },
            ("box", "state"),
        )
    },
}


SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(value: object) -> str | None:
    return None if isinstance(value, str) and SHA256.fullmatch(value) else f"is not a sha256 in hex: {shown(value)}"


# The metadata of an edge.clip/1 message; `seq` is not used: a clip is known by its box and id.
CLIP = {
    "schema": one_of(CLIP_SCHEMA),
    "id": text(MAX_CLIP_ID, empty=False),
    "kind": one_of("event", "alert"),
    "box": box_id,
    **{name: OBSERVATION[name] for name in ("source", "scientific_name", "common_name", "label")},
    "alert_class": optional(text()),
    **{name: OBSERVATION[name] for name in ("start_utc", "end_utc", "start_s", "end_s")},
    "sample_rate": optional(whole(8000, 384000)),  # none for a refused clip
    "duration_s": optional(number(0, MAX_CLIP_SECONDS)),
    "bytes": whole(0, MAX_CLIP_BYTES),
    "sha256": optional(sha256_hex),
    "refused": optional(one_of("speech")),
}


def clip_problem(data: dict) -> str | None:
    """Why `data` is not the metadata of a clip a box sends (None when it is)."""
    missing = [field for field in CLIP if field not in data]
    if missing:
        return f"{CLIP_SCHEMA} without {', '.join(missing)}"
    for field, check in CLIP.items():
        if why := check(data[field]):
            return f"{field} {why}"
    if data["end_s"] < data["start_s"]:
        return f"end_s {data['end_s']} is before start_s {data['start_s']}"
    if (data["kind"] == "alert") != (data["alert_class"] is not None):
        return f"alert_class {shown(data['alert_class'])} for a clip of kind {data['kind']}"
    if data["refused"] is None and (data["sha256"] is None or data["bytes"] == 0):
        return "a clip that was not refused has no audio (no bytes or sha256)"
    if data["refused"] is None and (data["sample_rate"] is None or data["duration_s"] is None):
        return "a clip that was not refused has no sample_rate or duration_s"
    return None


def problem(kind: str, data: dict) -> str | None:
    """Why `data` is not a record a box publishes on its `kind` topic (None when it is)."""
    schemas = SCHEMAS[kind]
    name = data.get("schema")
    if not isinstance(name, str) or name not in schemas:
        return f"schema {shown(name)} is not one of {', '.join(schemas)} (the {kind} topic's)"
    fields, required = schemas[name]
    missing = [field for field in required if field not in data]
    if missing:
        return f"{name} without {', '.join(missing)}"
    for field, check in fields.items():
        if field in data and (why := check(data[field])):
            return f"{field} {why}"
    if "start_s" in required and data["end_s"] < data["start_s"]:
        return f"end_s {data['end_s']} is before start_s {data['start_s']}"
    if kind == "status" and (data.get("latitude") is None) != (data.get("longitude") is None):
        return "latitude and longitude go together (a position), or neither"
    return None
