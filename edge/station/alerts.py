"""The alerts as the station's pages show them: each with its class, its clip (or why there is none), the mark a
ranger gave it and who took it on; and what changed since a reader last looked, for the live feed.

What changed is found by a cursor over the four tables an alert's view is made of, all of them append-only
(records, reviews, acknowledgements, clips: a pruned clip's row is updated, not replaced): the highest rowid of
each. A cursor read before a page is drawn and handed to the feed misses nothing and repeats nothing.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import astuple, dataclass

from edge.station.reviews import MARK_COLUMNS, MARK_JOINS

PAGE = 50
MAX_CHANGES = 200  # alerts changed since a cursor beyond which a reader had better load the page again
CURSOR = re.compile(r"\d{1,18}(-\d{1,18}){3}")

# The records of an alert: one for edge.alert/2 (its class and when the box heard it), a copy of each event
# record for edge.alert/1 (no class: the label stands for it).
ALERT_FIELD = (
    "(SELECT json_extract(payload, '$.{}') FROM records r WHERE r.box = d.box AND r.event_id = d.id "
    "AND r.kind = 'alerts' ORDER BY r.rowid LIMIT 1)"
)
ALERTS = f"""
SELECT d.box, d.id, d.scientific_name, d.common_name, d.label, d.max_confidence AS confidence,
    d.source, d.start_s, d.end_s, d.start_utc, d.end_utc, d.first_received_utc AS received_utc,
    coalesce({ALERT_FIELD.format("alert_class")}, c.alert_class) AS alert_class,
    {ALERT_FIELD.format("detected_utc")} AS detected_utc,
    c.path AS clip_path, c.refused AS clip_refused, c.pruned_utc AS clip_pruned_utc,
    c.duration_s AS clip_duration_s, c.sample_rate AS clip_rate,
    {MARK_COLUMNS}
FROM detections d LEFT JOIN clips c ON c.box = d.box AND c.id = d.id
{MARK_JOINS}
WHERE d.alert = 1 {{}}
"""
CHANGED = """
SELECT box, event_id FROM records WHERE rowid > ? AND rowid <= ? AND kind = 'alerts'
UNION SELECT box, id FROM reviews WHERE rowid > ? AND rowid <= ?
UNION SELECT box, id FROM acknowledgements WHERE rowid > ? AND rowid <= ?
UNION SELECT box, id FROM clips WHERE rowid > ? AND rowid <= ? AND kind = 'alert'
LIMIT ?
"""


@dataclass(frozen=True)
class Cursor:
    """The highest rowid of records, reviews, acknowledgements and clips a reader has seen."""

    records: int = 0
    reviews: int = 0
    acknowledgements: int = 0
    clips: int = 0

    def __str__(self) -> str:
        return "-".join(map(str, astuple(self)))

    def covers(self, other: Cursor) -> bool:
        """Whether a reader at this cursor has seen all that a reader at `other` has."""
        return all(mine >= theirs for mine, theirs in zip(astuple(self), astuple(other), strict=True))

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """The cursor `str()` gave; None for anything else (a reader's header is untrusted)."""
        if not text or not CURSOR.fullmatch(text):
            return None
        return cls(*map(int, text.split("-")))


def cursor(db: sqlite3.Connection) -> Cursor:
    """Where the tables are now."""
    row = db.execute(
        "SELECT (SELECT max(rowid) FROM records), (SELECT max(rowid) FROM reviews), "
        "(SELECT max(rowid) FROM acknowledgements), (SELECT max(rowid) FROM clips)"
    ).fetchone()
    return Cursor(*(value or 0 for value in row))


def newest(
    db: sqlite3.Connection, limit: int = PAGE, box: str | None = None, before: tuple[str, str, str] | None = None
) -> list:
    """The newest alerts the station received (of `box`; after the alert `before` in this order: its received
    time, box and id), newest first."""
    clauses, params = "", []
    if box is not None:
        clauses += " AND d.box = ?"
        params.append(box)
    if before is not None:
        clauses += " AND (d.first_received_utc, d.box, d.id) < (?, ?, ?)"
        params += before
    sql = ALERTS.format(clauses) + " ORDER BY d.first_received_utc DESC, d.box DESC, d.id DESC LIMIT ?"
    return db.execute(sql, (*params, limit)).fetchall()


def alert(db: sqlite3.Connection, box: str, alert_id: str) -> sqlite3.Row | None:
    return db.execute(ALERTS.format("AND d.box = ? AND d.id = ?"), (box, alert_id)).fetchone()


def changed(db: sqlite3.Connection, since: Cursor, until: Cursor) -> list[sqlite3.Row] | None:
    """The alerts whose view changed between two cursors (a new alert, its clip, a mark, who took it on), oldest
    first; None when more than MAX_CHANGES did."""
    bounds = [bound for pair in zip(astuple(since), astuple(until), strict=True) for bound in pair]
    keys = db.execute(CHANGED, (*bounds, MAX_CHANGES + 1)).fetchall()
    if len(keys) > MAX_CHANGES:
        return None
    rows = [row for key in keys if (row := alert(db, *key)) is not None]  # a review of an event is no alert's
    return sorted(rows, key=lambda row: (row["received_utc"], row["box"], row["id"]))
