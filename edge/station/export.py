"""CSV out of the station's database: one row per detection event, or every stored record; or its clips as
FLAC files in a folder with an index.csv.

A text cell that a spreadsheet would take for a formula (starting with =, +, -, @, a tab or a carriage return)
goes out behind a single quote, as OWASP recommends against CSV injection: a box name or species name is text
from the network. Numbers go out as numbers, negative ones too: SQLite hands them over as int or float, which
cannot hold a formula, and a quote would turn them into text that no longer sorts or sums.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

from edge.station.clips import file_stem, start_utc
from edge.station.reviews import MARK_JOINS
from edge.station.search import Filters

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
    # the ranger's mark (edge.station.reviews) and who took an alert on
    "verdict",
    "note",
    "reviewer",
    "reviewed_utc",
    "acknowledged_by",
)
REVIEW_COLUMNS = EVENT_COLUMNS[-5:]
RECORD_COLUMNS = ("box", "kind", "seq", "received_utc", "payload")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# When a record happened, for --since: the box's UTC time, or when the station received it where the box does not
# know the time of its recording (an event's: edge.station.search).
RECORD_TIME = "coalesce(json_extract(payload, '$.start_utc'), json_extract(payload, '$.time_utc'), received_utc)"
CLIP_TIME = "coalesce(c.start_utc, c.received_utc)"
# A clip's row and what its event or alert says (the clip may have come before its records: then empty).
CLIP_COLUMNS = (
    "file",
    "box",
    "id",
    "kind",
    "common_name",
    "scientific_name",
    "alert_class",
    "start_utc",
    "end_utc",
    "duration_s",
    "sample_rate",
    "bytes",
    "sha256",
    "refused",
    "received_utc",
    "pruned_utc",
    "max_confidence",
    "state",
)
CLIPS = f"""
SELECT c.*, d.max_confidence, d.state FROM clips c LEFT JOIN detections d USING (box, id)
{{}} ORDER BY box, {CLIP_TIME}, id
"""
INDEX = "index.csv"
NAME_PART = re.compile(r"[^A-Za-z0-9]+")


def write_events(
    db: sqlite3.Connection, out: TextIO, box: str | None = None, since: date | None = None, day: date | None = None
) -> int:
    """One row per detection event (alerts included, alert=1) with its mark, by box then by the box's order;
    the number of rows. The header is written even when there are none."""
    return write(out, EVENT_COLUMNS, events(db, export_filters(box, since, day)))


def export_filters(box: str | None, since: date | None, day: date | None) -> Filters:
    """The export's options as filters: UTC days."""
    since_utc = max(d for d in (since, day) if d is not None).isoformat() if since or day else None
    until_utc = (day + timedelta(days=1)).isoformat() if day else None
    return Filters(box=box, since_utc=since_utc, until_utc=until_utc)


def events(db: sqlite3.Connection, filters: Filters) -> sqlite3.Cursor:
    """The rows of EVENT_COLUMNS the filters choose, in the export's order (a cursor: read as it goes). A
    database the station has not opened since marks came (version 3 and before) has none to give."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'marks'").fetchone():
        marks, joins = "m.verdict, m.note, m.user, m.at_utc, a.user", MARK_JOINS
    else:
        marks, joins = ", ".join(["NULL"] * len(REVIEW_COLUMNS)), ""
    where, params = filters.where()
    columns = ", ".join(f"d.{name}" for name in EVENT_COLUMNS[: -len(REVIEW_COLUMNS)])
    return db.execute(
        f"SELECT {columns}, {marks} FROM detections d {joins} {where} "
        "ORDER BY d.box, d.first_seq IS NULL, d.first_seq, d.id",
        params,
    )


def write_records(
    db: sqlite3.Connection, out: TextIO, box: str | None = None, since: date | None = None, day: date | None = None
) -> int:
    """Every stored record, duplicates left out, its payload the JSON the box sent; by box, then seq."""
    where, params = conditions(box, since, RECORD_TIME, day)
    rows = db.execute(
        f"SELECT {', '.join(RECORD_COLUMNS)} FROM records {where} ORDER BY box, seq IS NULL, seq, received_utc", params
    )
    return write(out, RECORD_COLUMNS, rows)


def write_clips(
    db: sqlite3.Connection,
    clips: Path,
    folder: Path,
    box: str | None = None,
    since: date | None = None,
    day: date | None = None,
) -> int:
    """Copies the clip files kept in `clips` into `folder` under readable names, and writes its index.csv: one
    row per clip, those refused or pruned included (their `file` empty); the number of rows."""
    where, params = conditions(box, since, CLIP_TIME, day)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for row in db.execute(CLIPS.format(where), params):
        name = export_name(row) if row["path"] else ""
        if name:
            try:
                shutil.copyfile(clips / row["path"], folder / name)
            except FileNotFoundError:  # deleted by hand: the index says so
                name = ""
        rows.append((name, *(row[column] for column in CLIP_COLUMNS[1:])))
    with open(folder / INDEX, "w", newline="", encoding="utf-8") as index:
        return write(index, CLIP_COLUMNS, rows)


def export_name(clip: sqlite3.Row) -> str:
    """box_2026-11-23_090007_Eurasian-Wren_event_<id>.flac: sorted by box and time, the species or alert class
    in safe characters, the id to keep names apart."""
    moment = start_utc(clip["start_utc"], clip["received_utc"])
    what = NAME_PART.sub("-", clip["alert_class"] or clip["common_name"] or "").strip("-")[:40] or "clip"
    return f"{clip['box']}_{moment:%Y-%m-%d_%H%M%S}_{what}_{clip['kind']}_{file_stem(clip['id'])}.flac"


def conditions(box: str | None, since: date | None, time_sql: str, day: date | None = None) -> tuple[str, list]:
    clauses, params = [], []
    if box is not None:
        clauses.append("box = ?")
        params.append(box)
    if since is not None:
        clauses.append(f"{time_sql} >= ?")  # ISO 8601 UTC times compare as text
        params.append(since.isoformat())
    if day is not None:
        clauses.append(f"{time_sql} >= ? AND {time_sql} < ?")
        params += [day.isoformat(), (day + timedelta(days=1)).isoformat()]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def write(out: TextIO, columns: tuple[str, ...], rows) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(tuple(map(cell, row)))
        count += 1
    return count


def stream(columns: tuple[str, ...], rows: Iterable, rows_per_piece: int = 1000) -> Iterator[str]:
    """The CSV `write` makes, in pieces of text: a download sends each as soon as it is made."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for number, row in enumerate(rows, 1):
        writer.writerow(tuple(map(cell, row)))
        if number % rows_per_piece == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def cell(value: object) -> object:
    """The value as a spreadsheet may read it: text that would start a formula made plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
