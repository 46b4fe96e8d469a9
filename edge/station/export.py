"""CSV out of the station's database: one row per detection event, or every stored record.

A text cell that a spreadsheet would take for a formula (starting with =, +, -, @, a tab or a carriage return)
goes out behind a single quote, as OWASP recommends against CSV injection: a box name or species name is text
from the network. Numbers go out as numbers, negative ones too: SQLite hands them over as int or float, which
cannot hold a formula, and a quote would turn them into text that no longer sorts or sums.
"""

from __future__ import annotations

import csv
import sqlite3
from datetime import date
from typing import TextIO

EVENT_COLUMNS = (
    "box",
    "id",
    "alert",
    "scientific_name",
    "common_name",
    "start_utc",
    "end_utc",
    "start_s",
    "end_s",
    "source",
    "max_confidence",
    "state",
    "model",
    "model_version",
    "first_seq",
)
RECORD_COLUMNS = ("box", "kind", "seq", "received_utc", "payload")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# When an event or record happened, for --since: the box's UTC time, or when the station received it where the
# box does not know the time of its recording.
EVENT_TIME = "coalesce(start_utc, first_received_utc)"
RECORD_TIME = "coalesce(json_extract(payload, '$.start_utc'), json_extract(payload, '$.time_utc'), received_utc)"


def write_events(db: sqlite3.Connection, out: TextIO, box: str | None = None, since: date | None = None) -> int:
    """One row per detection event (alerts included, alert=1), by box then by the box's order; the number of
    rows. The header is written even when there are none."""
    where, params = conditions(box, since, EVENT_TIME)
    rows = db.execute(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM detections {where} ORDER BY box, first_seq IS NULL, first_seq, id",
        params,
    )
    return write(out, EVENT_COLUMNS, rows)


def write_records(db: sqlite3.Connection, out: TextIO, box: str | None = None, since: date | None = None) -> int:
    """Every stored record, duplicates left out, its payload the JSON the box sent; by box, then seq."""
    where, params = conditions(box, since, RECORD_TIME)
    rows = db.execute(
        f"SELECT {', '.join(RECORD_COLUMNS)} FROM records {where} ORDER BY box, seq IS NULL, seq, received_utc", params
    )
    return write(out, RECORD_COLUMNS, rows)


def conditions(box: str | None, since: date | None, time_sql: str) -> tuple[str, list]:
    clauses, params = [], []
    if box is not None:
        clauses.append("box = ?")
        params.append(box)
    if since is not None:
        clauses.append(f"{time_sql} >= ?")  # ISO 8601 UTC times compare as text
        params.append(since.isoformat())
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def write(out: TextIO, columns: tuple[str, ...], rows) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(tuple(map(cell, row)))
        count += 1
    return count


def cell(value: object) -> object:
    """The value as a spreadsheet may read it: text that would start a formula made plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
