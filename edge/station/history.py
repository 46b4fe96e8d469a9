"""A box's recent past, for its page: its health figures over a day, its latest alerts and events."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.wire.records import iso

# A health record's key is the time the box wrote on it. Boxes write UTC, but a time with another offset sorts
# differently as text: the query takes this much more, and the times are compared as times afterwards.
LARGEST_OFFSET = timedelta(hours=14)

HEALTH = """
SELECT key AS time_utc,
    json_extract(payload, '$.real_time_factor') AS real_time_factor,
    json_extract(payload, '$.cpu_percent') AS cpu_percent,
    json_extract(payload, '$.disk_free_percent') AS disk_free_percent
FROM records WHERE box = ? AND kind = 'health' AND key >= ? ORDER BY key
"""

LATEST = """
SELECT d.id, d.alert, d.scientific_name, d.common_name, d.max_confidence, d.state,
    coalesce(d.start_utc, d.first_received_utc) AS at_utc, m.verdict, m.user AS marked_by
FROM detections d LEFT JOIN marks m ON m.box = d.box AND m.id = d.id
WHERE d.box = ? AND d.alert = ? ORDER BY d.first_seq DESC LIMIT ?
"""


@dataclass(frozen=True)
class HealthPoint:
    """One health record's figures (None: the box did not measure it, e.g. no audio in the interval)."""

    time: datetime
    real_time_factor: float | None
    cpu_percent: float | None
    disk_free_percent: float | None


@dataclass(frozen=True)
class Heard:
    """An alert or event of the box, with the mark a ranger gave it (verdict None: not marked)."""

    id: str
    alert: bool
    scientific_name: str | None
    common_name: str | None
    max_confidence: float | None
    state: str
    at_utc: str
    verdict: str | None
    marked_by: str | None

    @property
    def name(self) -> str:
        return self.common_name or self.scientific_name or "?"


def health_since(db: sqlite3.Connection, box: str, since: datetime) -> list[HealthPoint]:
    """The box's health records written at `since` or later, oldest first."""
    points = []
    for row in db.execute(HEALTH, (box, iso(since - LARGEST_OFFSET))):
        try:
            moment = datetime.fromisoformat(row["time_utc"])
        except ValueError:  # the checks let only ISO times in; a database written otherwise is skipped over
            continue
        if moment.tzinfo is not None and moment >= since:
            points.append(
                HealthPoint(moment, *(number(row[n]) for n in ("real_time_factor", "cpu_percent", "disk_free_percent")))
            )
    points.sort(key=lambda point: point.time)
    return points


def number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def latest(db: sqlite3.Connection, box: str, alerts: bool, count: int = 10) -> list[Heard]:
    """The box's last `count` alerts (or events), newest first in the box's own order."""
    return [
        Heard(**{**dict(row), "alert": bool(row["alert"])}) for row in db.execute(LATEST, (box, int(alerts), count))
    ]
