"""Rangers' marks on what the boxes reported: an event or alert confirmed or false (with a note), and an alert
taken on ("on the way") by one ranger, so that two do not both drive out.

Every mark is kept with who gave it and when; the newest one of an event is its mark (the view `marks`), and
`cleared` takes a mark back. An event marked false is left out of the counts of the pages and the summaries.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.wire.records import iso

VERDICTS = ("confirmed", "false", "cleared")
MAX_NOTE = 1000
# In a query over detections d: the events that count (not marked false).
COUNTED = "NOT EXISTS (SELECT 1 FROM marks m WHERE m.box = d.box AND m.id = d.id AND m.verdict = 'false')"
# In a query over detections d: each row's mark and who took it on, under the names the pages' macros read
# (templates/marks.html): mark (confirmed, false or null), mark_note, mark_user, mark_utc; ack_user, ack_note,
# ack_utc.
MARK_COLUMNS = (
    "m.verdict AS mark, m.note AS mark_note, m.user AS mark_user, m.at_utc AS mark_utc, "
    "a.user AS ack_user, a.note AS ack_note, a.at_utc AS ack_utc"
)
MARK_JOINS = (
    "LEFT JOIN marks m ON m.box = d.box AND m.id = d.id LEFT JOIN acknowledgements a ON a.box = d.box AND a.id = d.id"
)


class ReviewError(ValueError):
    """A mark that cannot be given: its text says why."""


class UnknownEvent(ReviewError):
    """The box and id name no event or alert the station has."""


@dataclass(frozen=True)
class Acknowledgement:
    user: str
    at_utc: str
    note: str
    new: bool  # False: someone had taken the alert on already (this is theirs)


def clean_note(note: str) -> str:
    """The note without control characters (line breaks kept), at most MAX_NOTE characters."""
    kept = "".join(c for c in note if c in "\n\t" or unicodedata.category(c)[0] != "C")
    if len(kept) > MAX_NOTE:
        raise ReviewError(f"a note has at most {MAX_NOTE} characters")
    return kept.strip()


def known(db: sqlite3.Connection, box: str, event_id: str) -> sqlite3.Row:
    row = db.execute("SELECT alert FROM detections WHERE box = ? AND id = ?", (box, event_id)).fetchone()
    if row is None:
        raise UnknownEvent(f"no event {event_id!r} of box {box!r}")
    return row


def mark(db: sqlite3.Connection, box: str, event_id: str, verdict: str, note: str, user: str) -> str:
    """Records the mark (in the caller's transaction); its time."""
    if verdict not in VERDICTS:
        raise ReviewError(f"a mark is one of {', '.join(VERDICTS)}")
    known(db, box, event_id)
    at = iso(datetime.now(UTC))
    db.execute("INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?)", (box, event_id, verdict, clean_note(note), user, at))
    return at


def acknowledge(db: sqlite3.Connection, box: str, event_id: str, user: str, note: str = "") -> Acknowledgement:
    """Takes an alert on, unless someone has already: then theirs is returned (new=False)."""
    if not known(db, box, event_id)["alert"]:
        raise ReviewError("only an alert is taken on")
    at = iso(datetime.now(UTC))
    new = (
        db.execute(
            "INSERT OR IGNORE INTO acknowledgements VALUES (?, ?, ?, ?, ?)", (box, event_id, user, clean_note(note), at)
        ).rowcount
        == 1
    )
    row = db.execute(
        "SELECT user, at_utc, note FROM acknowledgements WHERE box = ? AND id = ?", (box, event_id)
    ).fetchone()
    return Acknowledgement(row["user"], row["at_utc"], row["note"], new)
