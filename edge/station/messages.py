"""What a box's message becomes at the station: a checked Record with the key that makes it unique.

Delivery is at least once, and a box that re-analyses a file after a crash publishes the same event records
again under new seq numbers: the key is therefore made of what the record says, never of its seq.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from edge.station import schemas
from edge.station.schemas import MAX_INTEGER, shown
from edge.wire.mqtt import KINDS, box_id_problem

# A box's largest record (health) is a few kilobytes; an event record about 600 bytes.
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_DEPTH = 16  # a health record nests 3 deep
CLIPS = "clips"  # the topic of clip messages (edge.wire.clips), which are no records: edge.station.clips
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
BRACKETS = re.compile(r"[\[\]{}]")


class RecordError(ValueError):
    """A message on our topics that no box of this version would publish; its text is the reason."""


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


def topic_parts(topic: str, prefix: str) -> tuple[str, str]:
    """(box, kind) of `<prefix>/<box>/<kind>`, kind one of KINDS; RecordError for any other topic under the
    prefix."""
    levels = topic.removeprefix(prefix + "/").split("/")
    box = levels[0]
    if problem := box_id_problem(box):
        raise RecordError(f"topic's {problem}")
    if len(levels) != 2 or levels[1] not in KINDS:
        raise RecordError(f"topic {shown(topic, 200)} is not {prefix}/<box>/ and one of {', '.join(KINDS)}")
    return box, levels[1]


def topic_box(topic: str, prefix: str) -> str | None:
    """The box a topic under the prefix names, when its box level is a box id."""
    box = topic.removeprefix(prefix + "/").split("/")[0]
    return None if box_id_problem(box) else box


def parse(box: str, kind: str, payload: bytes, received_utc: str, retained: bool = False) -> Record:
    """The record of one message; RecordError when the payload is not one."""
    text, data = json_object(payload)
    if problem := schemas.problem(kind, data):
        raise RecordError(problem)
    if data["box"] != box:
        raise RecordError(f"box {shown(data['box'])} of the payload is not the topic's {box!r}")
    return Record(box, kind, record_key(kind, data), data.get("seq"), data, text, received_utc, retained)


def json_object(payload: bytes) -> tuple[str, dict]:
    """The payload's text and its JSON object, within the limits; RecordError otherwise."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise RecordError(f"payload of {len(payload)} bytes is larger than {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordError(f"payload is not UTF-8: {error}") from None
    if (levels := depth(text)) > MAX_DEPTH:
        raise RecordError(f"payload nested {levels} deep, more than {MAX_DEPTH}")
    try:
        data = json.loads(
            text,
            parse_constant=not_a_number,
            parse_float=finite,
            parse_int=sqlite_integer,
            object_pairs_hook=unique_keys,
        )
    except RecordError:
        raise
    except ValueError as error:
        raise RecordError(f"payload is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise RecordError(f"payload is a JSON {type(data).__name__}, not an object")
    return text, data


def depth(text: str) -> int:
    """How deep arrays and objects nest in a JSON text, counted without parsing it (brackets inside strings
    left out): the parser recurses once per level, and a document 100,000 deep would exhaust the stack."""
    level = deepest = 0
    for bracket in BRACKETS.findall(STRINGS.sub("", text)):
        level += 1 if bracket in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def not_a_number(constant: str) -> float:
    raise RecordError(f"payload holds {constant}, which JSON does not allow")


def finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise RecordError(f"payload holds {shown(literal)}, beyond a float")
    return value


def sqlite_integer(literal: str) -> int:
    # checked on the digits: int() refuses more than 4,300 of them with another error
    if len(literal) > 20 or not -(2**63) <= int(literal) <= MAX_INTEGER:
        raise RecordError(f"payload holds the integer {shown(literal)}, beyond 64 bits")
    return int(literal)


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys are each given once: Python keeps the last of two, SQLite's JSON the first, so that
    what is checked here would not be what the database reads."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen = [key for key, _ in pairs]
        raise RecordError(f"payload gives {shown(next(k for k in seen if seen.count(k) > 1))} twice")
    return data


def record_key(kind: str, data: dict) -> str:
    """What identifies a checked record among its box's records of that kind."""
    if kind in ("events", "alerts"):
        # repr of the float: 17 and 17.0 are the same end
        return f"{data['id']} {data['kind']} {float(data['end_s'])!r}"
    if kind == "health":
        return data["time_utc"]
    # A last will is written when the box connects: its time may be that moment, or missing.
    return f"{data['state']} {data.get('time_utc')}"
