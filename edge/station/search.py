"""The detections a ranger looks for: events and alerts chosen by box, species, time, confidence, kind and mark;
a page of them at a time, newest first; and the day of them a timeline draws.

Times are compared as ISO 8601 text, as the boxes write them in UTC. An event is placed at its start on the
box's clock, or at its receipt by the station when the box did not know the time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from edge.station.reviews import MARK_COLUMNS, MARK_JOINS
from edge.wire.records import iso

REVIEWED = ("all", "unreviewed", "confirmed", "false")
KINDS = ("events", "alerts", "all")
TIME = "coalesce(d.start_utc, d.first_received_utc)"
MARKED = "SELECT 1 FROM marks m WHERE m.box = d.box AND m.id = d.id"
ROW = f"""
SELECT d.box, d.id, d.alert, d.scientific_name, d.common_name, d.start_utc, d.end_utc, d.first_received_utc,
    d.max_confidence, d.state, {TIME} AS time_utc, c.path AS clip, {MARK_COLUMNS}
FROM detections d {MARK_JOINS} LEFT JOIN clips c ON c.box = d.box AND c.id = d.id
"""
# The scientific name a species filter means: itself, or the one of that common name (uncorrelated, so that the
# query looks the species up once, by an index, and reads its detections in time order from another).
SPECIES = """coalesce(
    (SELECT scientific_name FROM detections WHERE scientific_name = ? LIMIT 1),
    (SELECT scientific_name FROM detections WHERE common_name = ? LIMIT 1))"""
SLOTS_PER_DAY = 96  # the timeline's bins: a quarter of an hour each


@dataclass(frozen=True)
class Filters:
    """Which detections: each field None (or "all") leaves that choice open. `since_utc` (inclusive) and
    `until_utc` (exclusive) are ISO times or days; `species` is a scientific or a common name."""

    box: str | None = None
    species: str | None = None
    since_utc: str | None = None
    until_utc: str | None = None
    min_confidence: float | None = None
    reviewed: str = "all"
    kind: str = "all"

    def where(self) -> tuple[str, list]:
        """The WHERE clause over `detections d` (empty when nothing is chosen) and its parameters."""
        clauses: list[str] = []
        params: list = []
        if self.box is not None:
            clauses.append("d.box = ?")
            params.append(self.box)
        if self.species is not None:
            clauses.append(f"d.scientific_name = {SPECIES}")
            params += [self.species, self.species]
        if self.since_utc is not None:
            clauses.append(f"{TIME} >= ?")
            params.append(self.since_utc)
        if self.until_utc is not None:
            clauses.append(f"{TIME} < ?")
            params.append(self.until_utc)
        if self.min_confidence is not None:
            clauses.append("d.max_confidence >= ?")
            params.append(self.min_confidence)
        if self.kind != "all":
            clauses.append("d.alert = ?")
            params.append(int(self.kind == "alerts"))
        if self.reviewed == "unreviewed":
            clauses.append(f"NOT EXISTS ({MARKED})")
        elif self.reviewed in ("confirmed", "false"):
            clauses.append("(d.box, d.id) IN (SELECT box, id FROM marks WHERE verdict = ?)")
            params.append(self.reviewed)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def local_day(day: date) -> tuple[str, str]:
    """The station's local day as UTC times: (its midnight, the next day's midnight), 23 or 25 hours apart on
    the days the clocks change."""
    start, end = (datetime.combine(d, time()).astimezone() for d in (day, day + timedelta(days=1)))
    return iso(start.astimezone(UTC)), iso(end.astimezone(UTC))


def day_of(text: str, name: str = "the day") -> date:
    """The day a visitor typed (YYYY-MM-DD); ValueError naming the problem. Years 2 to 9998 only: a day of year
    1 or 9999 may have no midnight in UTC, or no next day."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None
    if not 2 <= day.year <= 9998:
        raise ValueError(f"{name} {text!r} is out of range (years 2 to 9998)")
    return day


def today() -> date:
    """The station's local day."""
    return datetime.now().astimezone().date()


@dataclass(frozen=True)
class Cursor:
    """Where a page ends, in the order of the pages (time, box, id: unique); its text goes into the links."""

    time_utc: str
    box: str
    id: str

    def __str__(self) -> str:
        return f"{self.time_utc}|{self.box}|{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """ValueError when the text is not one (a time and a box id hold no '|'; the id may)."""
        parts = text.split("|", 2)
        if len(parts) != 3:
            raise ValueError("the page link is damaged: start from the first page")
        return cls(*parts)

    @classmethod
    def of(cls, row: sqlite3.Row) -> Cursor:
        return cls(row["time_utc"], row["box"], row["id"])


@dataclass(frozen=True)
class Page:
    rows: list[sqlite3.Row]
    newer: Cursor | None  # the `after` of the page before this one (None: this is the newest)
    older: Cursor | None  # the `before` of the page after this one (None: this is the oldest)


def page(
    db: sqlite3.Connection,
    filters: Filters,
    size: int,
    before: Cursor | None = None,
    after: Cursor | None = None,
) -> Page:
    """`size` detections, newest first: the newest of all, those just older than `before`, or those just newer
    than `after`. Keyset pages: a page deep into 100,000 rows costs what the first does."""
    where, params = filters.where()
    cursor = before or after
    if cursor is not None:
        # The row value orders the page; the bound on the time alone lets the index seek to where it starts.
        side = "<" if before else ">"
        where += " AND " if where else "WHERE "
        where += f"{TIME} {side}= ? AND ({TIME}, d.box, d.id) {side} (?, ?, ?)"
        params += [cursor.time_utc, cursor.time_utc, cursor.box, cursor.id]
    order = "ASC" if after else "DESC"
    rows = db.execute(
        f"{ROW} {where} ORDER BY {TIME} {order}, d.box {order}, d.id {order} LIMIT ?", [*params, size + 1]
    ).fetchall()
    more = len(rows) > size
    rows = rows[:size]
    if after:
        rows.reverse()
    first, last = (Cursor.of(rows[0]), Cursor.of(rows[-1])) if rows else (None, None)
    if after:
        return Page(rows, first if more else None, last)
    return Page(rows, first if before else None, last if more else None)


def count(db: sqlite3.Connection, filters: Filters, limit: int) -> int:
    """How many detections the filters choose, counted up to `limit` (the cost of counting stays bounded)."""
    where, params = filters.where()
    sql = f"SELECT count(*) FROM (SELECT 1 FROM detections d {where} LIMIT ?)"
    return db.execute(sql, [*params, limit]).fetchone()[0]


def day_slots(db: sqlite3.Connection, filters: Filters, start_utc: str) -> list[sqlite3.Row]:
    """Per species and quarter of an hour after `start_utc`: how many detections, and their highest confidence
    (the filters' times choose the day)."""
    where, params = filters.where()
    return db.execute(
        f"""SELECT d.scientific_name, max(d.common_name) AS common_name,
            CAST((julianday({TIME}) - julianday(?)) * {SLOTS_PER_DAY} AS INTEGER) AS slot,
            count(*) AS detections, max(d.max_confidence) AS confidence
        FROM detections d {where} GROUP BY d.scientific_name, slot""",
        [start_utc, *params],
    ).fetchall()


def day_marks(db: sqlite3.Connection, filters: Filters, start_utc: str) -> list[sqlite3.Row]:
    """Each detection the filters choose: its species, its hours after `start_utc`, its confidence."""
    where, params = filters.where()
    return db.execute(
        f"""SELECT d.scientific_name, d.common_name, d.box, {TIME} AS time_utc, d.max_confidence AS confidence,
            (julianday({TIME}) - julianday(?)) * 24 AS hour
        FROM detections d {where} ORDER BY time_utc""",
        [start_utc, *params],
    ).fetchall()


def common_names(db: sqlite3.Connection, limit: int = 500) -> list[str]:
    """The common names heard, in order, at most `limit`: one index seek each, however many detections."""
    rows = db.execute(
        """WITH RECURSIVE names(name) AS (
            SELECT min(common_name) FROM detections
            UNION ALL
            SELECT (SELECT min(common_name) FROM detections WHERE common_name > name) FROM names WHERE name IS NOT NULL)
        SELECT name FROM names WHERE name IS NOT NULL LIMIT ?""",
        (limit,),
    )
    return [name for (name,) in rows]
