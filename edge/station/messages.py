"""What a box's message becomes at the station: a checked Record with the key that makes it unique.

Delivery is at least once, and a box that re-analyses a file after a crash publishes the same event records
again under new seq numbers: the key is therefore made of what the record says, never of its seq.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from edge.mqtt import KINDS

EVENT_KINDS = ("start", "update", "end", "alert")  # an alert is one window: edge.alerts
STATES = ("online", "offline", "stopped")


class RecordError(ValueError):
    """A message on one of our topics that no box of this version would publish."""


@dataclass(frozen=True)
class Record:
    """One message from a box, as the station keeps it.

    `kind` is the topic's last level (events, alerts, health, status); `key` identifies the record among its
    box's records of that kind; `text` is the payload as received; `received_utc` the station's clock;
    `retained` marks a status the broker kept, which says nothing about when the box last spoke."""

    box: str
    kind: str
    key: str
    seq: int | None
    payload: dict
    text: str
    received_utc: str
    retained: bool = False

    @property
    def event_id(self) -> str | None:
        return self.payload["id"] if self.kind in ("events", "alerts") else None


def topic_parts(topic: str, prefix: str) -> tuple[str, str] | None:
    """(box, kind) of `<prefix>/<box>/<kind>`; None for any other topic under the prefix."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1:].split("/")
    if len(parts) != 2 or not parts[0] or parts[1] not in KINDS:
        return None
    return parts[0], parts[1]


def parse(box: str, kind: str, payload: bytes, received_utc: str, retained: bool = False) -> Record:
    """The record of one message; RecordError when the payload is not one."""
    try:
        text = payload.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError(f"not UTF-8 JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("schema"), str):
        raise RecordError("not a JSON object with a schema")
    seq = data.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise RecordError(f"seq is not a whole number: {seq!r}")
    return Record(box, kind, record_key(kind, data), seq, data, text, received_utc, retained)


def record_key(kind: str, data: dict) -> str:
    if kind in ("events", "alerts"):
        event_id, event_kind, end_s = data.get("id"), data.get("kind"), data.get("end_s")
        if not isinstance(event_id, str) or not event_id:
            raise RecordError("event without an id")
        if event_kind not in EVENT_KINDS:
            raise RecordError(f"event kind {event_kind!r} is none of {', '.join(EVENT_KINDS)}")
        if not number(end_s):
            raise RecordError(f"event end_s is not a number: {end_s!r}")
        # repr of the float: 17 and 17.0 are the same end
        return f"{event_id} {event_kind} {float(end_s)!r}"
    time_utc = data.get("time_utc")
    if kind == "health":
        if not isinstance(time_utc, str):
            raise RecordError("health record without time_utc")
        return time_utc
    if data.get("state") not in STATES:
        raise RecordError(f"status state {data.get('state')!r} is none of {', '.join(STATES)}")
    # A last will is written when the box connects: its time may be that moment, or missing.
    return f"{data['state']} {time_utc}"


def number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
