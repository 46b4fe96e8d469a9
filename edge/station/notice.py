"""What a ranger's phone shows of an alert: its title and plain-text body, and how often a box and class, and
all of them together, may say it.

Everything in an alert record comes from a box and is untrusted: its class, box id and id reach the message as
plain text, cut short, without control or formatting characters (a bidirectional override could make the
text read otherwise than it is). The message is sent as text; Apprise escapes it for the services that render
Markdown or HTML.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from urllib.parse import urlencode

from edge.station.messages import Record

MAX_NAME = 64  # characters of a class or box id in a message; chat services cut titles short anyway
MAX_KEYS = 10_000  # (box, class) pairs the rate limit remembers: a box's topic must not grow memory for ever
# Unicode categories dropped from box text: control, format (bidi overrides, zero-width joiners), surrogate,
# private use, unassigned.
DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


@dataclass(frozen=True)
class Notice:
    """One alert as it is sent: `box`, `alert_class` and `id` as the box sent them (for the logs), `title` and
    `body` as the rangers read them."""

    box: str
    alert_class: str
    id: str
    title: str
    body: str


def plain(text: str, limit: int = MAX_NAME) -> str:
    """`text` as one line of plain text: without control or formatting characters, whitespace runs made one
    space, at most `limit` characters (an ellipsis ends a text cut short)."""
    kept = "".join(c for c in text if unicodedata.category(c) not in DROPPED)
    line = " ".join(kept.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def alert_class(record: Record) -> str:
    """The class an alert record is for: edge.alert/1 records (a copy of the event) name it as the species."""
    return record.payload.get("alert_class") or record.payload["common_name"]


def alert_time(record: Record) -> datetime:
    """When the sound was heard: the start of its window, else when the box detected it, else when the station
    received it."""
    p = record.payload
    return datetime.fromisoformat(p.get("start_utc") or p.get("detected_utc") or record.received_utc)


def clock_text(moment: datetime, zone: tzinfo | None = None) -> str:
    """The time in UTC, and in the station's own time zone (`zone`, default the system's) when that differs."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    local = moment.astimezone(zone) if zone else moment.astimezone()
    if local.utcoffset():
        text += local.strftime(", %H:%M:%S %Z at the station")
    return text


def compose(
    record: Record,
    held: int = 0,
    since: datetime | None = None,
    page_url: str | None = None,
    zone: tzinfo | None = None,
    others: int = 0,
    others_since: datetime | None = None,
) -> Notice:
    """The message of an alert record; `held` alerts of its box and class were held back since the last one
    sent, heard at `since`; `page_url` is the station's address, for a link to the alert; `zone` the station's
    time zone (default: the system's); `others` alerts of any box and class were held back by the total limit
    since the last message, the first of them heard at `others_since`."""
    p = record.payload
    name, box = plain(alert_class(record)), plain(record.box)
    lines = [
        f"{name} heard by box {box}, confidence {p['confidence']:.0%}",
        clock_text(alert_time(record), zone),
    ]
    if held:
        lines.append(f"and {held} more since {since.astimezone(UTC):%H:%M:%S} UTC" if since else f"and {held} more")
    if others:
        alerts = "alert" if others == 1 else "alerts"
        when = f" since {others_since.astimezone(UTC):%H:%M:%S} UTC" if others_since else ""
        lines.append(f"{others} more {alerts} of any box not sent{when}: too many at once")
    if page_url:
        query = urlencode({"box": record.box, "id": p["id"]})
        lines.append(f"{page_url.rstrip('/')}/alerts?{query}")
    return Notice(record.box, alert_class(record), p["id"], f"{name} at {box}", "\n".join(lines))


@dataclass
class _Sent:
    at: float  # the clock's seconds when the last one was let through
    heard: datetime | None  # when that one was heard
    held: int = 0


class RateLimit:
    """At most one notification per key (a box and an alert class) within `interval` seconds of the clock
    given to `offer` (a monotonic one: a clock set back must not silence a box); those held back are counted
    for the next one let through."""

    def __init__(self, interval: float, max_keys: int = MAX_KEYS):
        self.interval = interval
        self.max_keys = max_keys
        self._sent: OrderedDict[tuple[str, str], _Sent] = OrderedDict()

    def offer(
        self, key: tuple[str, str], now: float, heard: datetime | None = None
    ) -> tuple[int, datetime | None] | None:
        """None when this one is held back (and counted); else it is let through: how many were held back since
        the last one let through, and when that one was heard."""
        last = self._sent.get(key)
        if last is not None and not self.due(key, now):
            last.held += 1
            return None
        self._sent[key] = _Sent(now, heard)
        self._sent.move_to_end(key)
        while len(self._sent) > self.max_keys:
            self._sent.popitem(last=False)
        return (last.held, last.heard) if last else (0, None)

    def held(self, key: tuple[str, str]) -> int:
        """How many of `key` are held back since the last one let through."""
        last = self._sent.get(key)
        return last.held if last else 0

    def due(self, key: tuple[str, str], now: float) -> bool:
        """Whether one of `key` would be let through at `now`."""
        last = self._sent.get(key)
        return last is None or now - last.at >= self.interval


class TotalLimit:
    """At most `count` notifications within any `interval` seconds of the clock, over all boxes and classes
    together: a publisher that makes up a new box or class for each alert must not flood the rangers' phones
    (an interval of 0: no limit). Those held back are counted, with when the first of them was heard, for the
    next one let through."""

    def __init__(self, count: int, interval: float):
        self.count, self.interval = count, interval
        self.held = 0
        self._since: datetime | None = None
        self._sent: deque[float] = deque(maxlen=count)  # when the latest `count` were let through

    def full(self, now: float) -> bool:
        """Whether `count` were let through within `interval` before `now`."""
        return len(self._sent) == self.count and now - self._sent[0] < self.interval

    def hold(self, heard: datetime | None) -> int:
        """Counts one held back (heard at `heard`); how many are held back now."""
        self.held += 1
        if heard is not None and (self._since is None or heard < self._since):
            self._since = heard
        return self.held

    def let(self, now: float) -> tuple[int, datetime | None]:
        """Lets one through at `now`: how many were held back since the last one, and when the first of them was
        heard."""
        self._sent.append(now)
        held, since = self.held, self._since
        self.held, self._since = 0, None
        return held, since
