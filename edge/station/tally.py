"""Which species the boxes heard, and how often: per species, the events of each of the station's local days
or of each box, with the highest confidence and when the species was first and last heard.

Only events count (an alert is no species), and never those a ranger marked false.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from edge.station.reviews import COUNTED
from edge.station.search import TIME

BY = ("day", "box")
# The station's local day of an event: SQLite reads the offset of the ISO time, and 'localtime' is the zone of
# the station's process, as Python's astimezone() is.
LOCAL_DAY = f"date({TIME}, 'localtime')"


@dataclass
class Heard:
    """One species' events in the span: per day or box (`cells`: events and highest confidence)."""

    scientific_name: str
    common_name: str
    events: int = 0
    confidence: float = 0.0
    first_utc: str = ""
    last_utc: str = ""
    cells: dict[str, tuple[int, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Tally:
    species: list[Heard]  # the most heard first, at most `limit`
    columns: list[str]  # the days or boxes that have events
    more: int  # species left out beyond the limit


def tally(
    db: sqlite3.Connection, since_utc: str, until_utc: str, by: str, box: str | None = None, limit: int = 500
) -> Tally:
    """The species heard between the two UTC times (until excluded), by local day or by box; only `box`'s
    when given."""
    column = LOCAL_DAY if by == "day" else "d.box"
    where = f"WHERE NOT d.alert AND {TIME} >= ? AND {TIME} < ? AND {COUNTED}"
    params: list = [since_utc, until_utc]
    if box is not None:
        where += " AND d.box = ?"
        params.append(box)
    rows = db.execute(
        f"""SELECT d.scientific_name, max(d.common_name) AS common_name, {column} AS col, count(*) AS events,
            max(d.max_confidence) AS confidence, min({TIME}) AS first_utc, max({TIME}) AS last_utc
        FROM detections d {where} GROUP BY d.scientific_name, col""",
        params,
    )
    found: dict[str, Heard] = {}
    columns: set[str] = set()
    for row in rows:
        heard = found.setdefault(row["scientific_name"], Heard(row["scientific_name"], row["common_name"] or ""))
        heard.cells[row["col"]] = (row["events"], row["confidence"] or 0.0)
        heard.events += row["events"]
        heard.confidence = max(heard.confidence, row["confidence"] or 0.0)
        heard.first_utc = min(heard.first_utc or row["first_utc"], row["first_utc"])
        heard.last_utc = max(heard.last_utc, row["last_utc"])
        columns.add(row["col"])
    species = sorted(found.values(), key=lambda h: (-h.events, h.common_name or h.scientific_name))
    return Tally(species[:limit], sorted(columns), max(0, len(species) - limit))
