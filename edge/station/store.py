"""The station's SQLite database: every record once, one row per detection event, one row per box.

Each record is committed (WAL, synchronous=FULL) before the broker is told it arrived, so a station killed
at any moment loses nothing: what was not committed was not acknowledged and comes again.

Tables:
- records: box, kind (events, alerts, health, status), key (unique per box and kind), seq, event_id,
  payload (the JSON as received), received_utc.
- seqs: every (box, seq) seen, duplicates' included: a re-published record still took its number.
- detections: one row per (box, event id), rebuilt from that event's records, so that their arrival order
  does not matter; indexed in time order (the box's time, or the station's receipt) overall, per species and
  per box, and by common name, for the pages' filters.
- boxes: status (and when it was given and received), version, last_seen_utc, the newest health payload
  (its time, and when it arrived), the position the newest status gave (latitude, longitude), the lowest
  and highest seq, how many distinct seqs arrived and how many between them are missing, how many
  messages were rejected. Messages whose topic names no valid box id count under INVALID_BOX.
- rejected: the newest MAX_REJECTED messages that were not records a box publishes (topic, reason, the first
  MAX_KEPT_BYTES of the payload and its size), for a look later.
- clips: one row per (box, id) of the clips received (edge.station.clips): what the clip is, where its FLAC
  file is below the clip folder (null for a clip refused for speech, or pruned since: pruned_utc), its size
  and sha256. (box, id) is also the key of its event's or alert's row in detections.
- users, sessions: who may sign in to the web pages (edge.station.web.auth): a name, a role (admin, ranger,
  guest) and a password hash; a session by the hash of its cookie, with its CSRF token and expiry.
- reviews: every mark a ranger gave an event or alert (box, id): confirmed, false or cleared, a note, who and
  when; the newest row of (box, id) is its mark (the view `marks`, without those cleared). acknowledgements:
  who took an alert on ("on the way"), once (edge.station.reviews).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

import structlog

from edge.station.messages import Record, RecordError
from edge.storage.database import make_durable, transaction

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 4
MAX_REJECTED = 10_000
MAX_KEPT_BYTES = 4096
MAX_TOPIC = 300  # characters of a rejected message's topic kept (a topic may have 65,535)
INVALID_BOX = "(invalid box id)"  # not a box id itself: no box can take its place

REJECTED_TABLE = """
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY, box TEXT NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL, payload TEXT NOT NULL,
    size INTEGER NOT NULL, received_utc TEXT NOT NULL);
"""
CLIPS_TABLE = """
CREATE TABLE IF NOT EXISTS clips (
    box TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
    scientific_name TEXT, common_name TEXT, alert_class TEXT, start_utc TEXT, end_utc TEXT,
    duration_s REAL, sample_rate INTEGER, path TEXT, bytes INTEGER NOT NULL, sha256 TEXT, refused TEXT,
    received_utc TEXT NOT NULL, pruned_utc TEXT,
    UNIQUE (box, id));
CREATE INDEX IF NOT EXISTS clips_kept ON clips (received_utc) WHERE path IS NOT NULL;
"""
WEB_TABLES = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('admin', 'ranger', 'guest')),
    password TEXT NOT NULL, created_utc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL,
    created_utc TEXT NOT NULL, expires_utc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    box TEXT NOT NULL, id TEXT NOT NULL, verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'false', 'cleared')),
    note TEXT NOT NULL DEFAULT '', user TEXT NOT NULL, at_utc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reviews_of ON reviews (box, id, at_utc);
CREATE VIEW IF NOT EXISTS marks AS
    SELECT box, id, verdict, note, user, at_utc FROM reviews r
    WHERE rowid = (SELECT max(rowid) FROM reviews WHERE box = r.box AND id = r.id) AND verdict != 'cleared';
CREATE TABLE IF NOT EXISTS acknowledgements (
    box TEXT NOT NULL, id TEXT NOT NULL, user TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', at_utc TEXT NOT NULL,
    PRIMARY KEY (box, id));
CREATE INDEX IF NOT EXISTS detections_time ON detections (coalesce(start_utc, first_received_utc));
CREATE INDEX IF NOT EXISTS detections_species ON detections (scientific_name, coalesce(start_utc, first_received_utc));
CREATE INDEX IF NOT EXISTS detections_common ON detections (common_name);
CREATE INDEX IF NOT EXISTS detections_recent ON detections (box, first_seq);
CREATE INDEX IF NOT EXISTS detections_box_time ON detections (box, coalesce(start_utc, first_received_utc));
CREATE INDEX IF NOT EXISTS detections_alerts ON detections (first_received_utc, box, id) WHERE alert = 1;
"""
BOX_PAGE_COLUMNS = """
ALTER TABLE boxes ADD COLUMN health_received_utc TEXT;
ALTER TABLE boxes ADD COLUMN latitude REAL;
ALTER TABLE boxes ADD COLUMN longitude REAL;
"""
# From each version to the next, in one transaction with its user_version.
MIGRATIONS = {
    1: "ALTER TABLE boxes ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;" + REJECTED_TABLE,
    2: CLIPS_TABLE,
    3: WEB_TABLES + BOX_PAGE_COLUMNS,
}

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS records (
    box TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER, event_id TEXT,
    payload TEXT NOT NULL, received_utc TEXT NOT NULL,
    UNIQUE (box, kind, key));
CREATE INDEX IF NOT EXISTS records_event ON records (box, event_id) WHERE event_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS seqs (box TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (box, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS detections (
    box TEXT NOT NULL, id TEXT NOT NULL, alert INTEGER NOT NULL,
    scientific_name TEXT, common_name TEXT, label TEXT, source TEXT, model TEXT, model_version TEXT,
    start_s REAL, start_utc TEXT, end_s REAL, end_utc TEXT, max_confidence REAL,
    state TEXT NOT NULL, first_seq INTEGER, records INTEGER NOT NULL,
    first_received_utc TEXT NOT NULL, last_received_utc TEXT NOT NULL,
    PRIMARY KEY (box, id));
CREATE TABLE IF NOT EXISTS boxes (
    box TEXT PRIMARY KEY,
    status TEXT, status_utc TEXT, status_received_utc TEXT, version TEXT, last_seen_utc TEXT,
    health TEXT, health_utc TEXT,
    seq_min INTEGER, seq_max INTEGER, seq_count INTEGER NOT NULL DEFAULT 0,
    missing_seq INTEGER GENERATED ALWAYS AS (seq_max - seq_min + 1 - seq_count) VIRTUAL,
    rejected INTEGER NOT NULL DEFAULT 0, health_received_utc TEXT, latitude REAL, longitude REAL);
"""
    + REJECTED_TABLE
    + CLIPS_TABLE
    + WEB_TABLES
)


# One event's row from all its records: the first start, the last end, the highest confidence, ended once any
# end record is in, whichever order they came in. (json_extract rather than ->>: SQLite before 3.38.)
def field(name: str) -> str:
    return f"json_extract(payload, '$.{name}')"


REBUILD_DETECTION = f"""
INSERT OR REPLACE INTO detections
SELECT box, event_id, max(kind = 'alerts'),
    {
    ", ".join(
        f"max({field(name)})"
        for name in ("scientific_name", "common_name", "label", "source", "model", "model_version")
    )
},
    min({field("start_s")}), min({field("start_utc")}), max({field("end_s")}), max({field("end_utc")}),
    max({field("confidence")}), CASE WHEN max({field("kind")} IN ('end', 'alert')) THEN 'ended' ELSE 'open' END,
    min(seq), count(*), min(received_utc), max(received_utc)
FROM records WHERE box = ? AND event_id = ? GROUP BY box, event_id
"""


class StoreError(RuntimeError):
    """The database cannot be opened or is of another version."""


def connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit); read_only for the table, the export and the
    pages (a streamed download reads on one pool thread after another: never on two at once)."""
    try:
        if read_only:
            if not path.exists():
                raise StoreError(f"{path}: no such database")
            db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout = 5000")
        return db
    except sqlite3.Error as error:
        raise StoreError(f"{path}: {error}") from None


class Store:
    """Writes records; one writer (the MQTT thread), any number of readers on their own connections."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    @classmethod
    def open(cls, path: Path) -> Store:
        db = connect(path)
        try:
            make_durable(db)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, *MIGRATIONS, SCHEMA_VERSION):
                raise StoreError(f"{path}: database version {version}, this station writes {SCHEMA_VERSION}")
            if version == 0:
                db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            while version in MIGRATIONS:
                db.executescript(f"BEGIN; {MIGRATIONS[version]} PRAGMA user_version = {version + 1}; COMMIT;")
                log.info("station_database_migrated", db=str(path), version=version + 1)
                version += 1
        except sqlite3.Error as error:
            db.close()
            raise StoreError(f"{path}: {error}") from None
        return cls(db)

    def add(self, record: Record) -> bool:
        """Commits the record and what follows from it; False when it was already stored. sqlite3.Error when
        the database cannot be written (nothing of the record is then kept), RecordError when SQLite would not
        read its payload as JSON (a gap between the checks of messages and SQLite's must not stop the station)."""
        db = self.db
        if not db.execute("SELECT json_valid(?)", (record.text,)).fetchone()[0]:
            raise RecordError("payload is not JSON to SQLite")
        with self.transaction():
            new = (
                db.execute(
                    "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.box,
                        record.kind,
                        record.key,
                        record.seq,
                        record.event_id,
                        record.text,
                        record.received_utc,
                    ),
                ).rowcount
                == 1
            )
            self._note_box(record)
            if new and record.event_id is not None:
                db.execute(REBUILD_DETECTION, (record.box, record.event_id))
            if new and record.kind == "health":
                db.execute(
                    "UPDATE boxes SET health = ?, health_utc = ?, health_received_utc = ? WHERE box = ? "
                    "AND (health_utc IS NULL OR health_utc < ?)",
                    (record.text, record.key, record.received_utc, record.box, record.key),
                )
        return new

    def reject(
        self, box: str | None, topic: str, reason: str, payload: bytes, received_utc: str, size: int | None = None
    ) -> None:
        """Keeps a message that is no record (the newest MAX_REJECTED of them) and counts it for its box
        (INVALID_BOX when the topic names none); `size`: the message's, when `payload` is only its head (a
        clip's metadata, without the audio). sqlite3.Error when the database cannot be written."""
        box = box or INVALID_BOX
        if len(topic) > MAX_TOPIC:
            topic = f"{topic[:MAX_TOPIC]}... ({len(topic)} characters)"
        kept = payload[:MAX_KEPT_BYTES].decode("utf-8", "backslashreplace")
        db = self.db
        with self.transaction():
            row = db.execute(
                "INSERT INTO rejected (box, topic, reason, payload, size, received_utc) VALUES (?, ?, ?, ?, ?, ?)",
                (box, topic, reason, kept, len(payload) if size is None else size, received_utc),
            ).lastrowid
            assert row is not None  # an INSERT sets it
            db.execute("DELETE FROM rejected WHERE id <= ?", (row - MAX_REJECTED,))
            db.execute("INSERT OR IGNORE INTO boxes (box) VALUES (?)", (box,))
            db.execute("UPDATE boxes SET rejected = rejected + 1 WHERE box = ?", (box,))

    def transaction(self) -> AbstractContextManager[None]:
        return transaction(self.db)

    def _note_box(self, record: Record) -> None:
        db = self.db
        db.execute("INSERT OR IGNORE INTO boxes (box) VALUES (?)", (record.box,))
        # A retained status is the broker's memory and a last will the broker speaking: neither is the box.
        if not record.retained and not (record.kind == "status" and record.payload["state"] == "offline"):
            db.execute(
                "UPDATE boxes SET last_seen_utc = max(coalesce(last_seen_utc, ''), ?) WHERE box = ?",
                (record.received_utc, record.box),
            )
        if (
            record.seq is not None
            and db.execute("INSERT OR IGNORE INTO seqs VALUES (?, ?)", (record.box, record.seq)).rowcount == 1
        ):
            db.execute(
                "UPDATE boxes SET seq_count = seq_count + 1, seq_min = min(coalesce(seq_min, ?1), ?1), "
                "seq_max = max(coalesce(seq_max, ?1), ?1) WHERE box = ?2",
                (record.seq, record.box),
            )
        if record.kind == "status":
            # The broker hands a topic's messages over in order and a status is retained: the latest to arrive
            # is the box's state, whatever time it carries (a last will carries the time of its connection), and
            # its position (none: the box no longer says where it is).
            p = record.payload
            db.execute(
                "UPDATE boxes SET status = ?, status_utc = ?, status_received_utc = ?, "
                "version = coalesce(?, version), latitude = ?, longitude = ? WHERE box = ?",
                (
                    p["state"],
                    p.get("time_utc"),
                    record.received_utc,
                    p.get("version"),
                    p.get("latitude"),
                    p.get("longitude"),
                    record.box,
                ),
            )

    def close(self) -> None:
        self.db.close()
