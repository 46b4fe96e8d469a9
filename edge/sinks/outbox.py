"""The durable outbox: every record the box publishes is committed here before the uplink sees it, and leaves
only when the broker has acknowledged it (PUBACK). A SQLite database in WAL mode with synchronous commits, so
neither a broker outage, nor a power cut, nor kill -9 loses a record.

It also keeps the box's sequence number (one counter for every record, never reused) and the keys of the
records already published, so that a recording analysed again after a crash does not publish its events twice.

On a full or read-only disk `add` raises (edge.sinks.outputs holds the record in memory and adds it again
later); the database stays readable, opened read-only if it cannot be opened for writing at all, and each
later `add` first tries to open it for writing again. Adding a record whose key was committed already is a
no-op, so a record added again after an uncertain failure is not queued twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from edge.storage.database import open_durable, open_read_only, rollback
from edge.storage.faults import DISK_ERRORS, in_words
from edge.wire.records import to_json

log = structlog.get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, seq);
CREATE TABLE IF NOT EXISTS published (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# A re-analysis only repeats the recording that was in flight at a crash: its keys are needed for days, not
# for ever.
KEEP_KEYS_SECONDS = 30 * 86400
# When full, health records go first: each is superseded by the next one.
EXPENDABLE = "health"

WhenFull = Literal["drop_oldest", "drop_newest"]


@dataclass(frozen=True)
class Pending:
    seq: int
    kind: str
    payload: str


class Outbox:
    """Shared by the daemon's loop (which adds) and the uplink's thread (which reads and acknowledges).

    `queue=False` keeps only the sequence and the published keys: a box without an uplink still numbers its
    records and still does not repeat them."""

    def __init__(
        self, path: Path, max_records: int = 1_000_000, when_full: WhenFull = "drop_oldest", queue: bool = True
    ):
        self.max_records = max_records
        self.when_full = when_full
        self.queue = queue
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self.writable = False
        self.open_error: str | None = None
        self._last_full_log = 0.0
        self._open()

    def _open(self) -> None:
        """Open for writing, or else read-only (a read-only disk); a disk error leaves `open_error` set."""
        try:
            db = open_durable(self.path, SCHEMA, shared=True)
            db.execute("DELETE FROM published WHERE created < ?", (time.time() - KEEP_KEYS_SECONDS,))
        except DISK_ERRORS as error:
            self.open_error = in_words(error, self.path)
            if self._connection is None:
                self._connection = open_read_only(self.path, SCHEMA, shared=True)
                self._pending = self._connection.execute("SELECT count(*) FROM outbox").fetchone()[0]
                log.error("outbox_read_only", path=str(self.path), error=self.open_error)
            return
        if self._connection is not None:
            self._connection.close()
        self._connection, self.writable, self.open_error = db, True, None
        self._pending = db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    @property
    def _db(self) -> sqlite3.Connection:
        """The database; `_open` (called by the constructor) sets it or raises, so it is always there."""
        if self._connection is None:
            raise RuntimeError(f"the outbox {self.path} was never opened")
        return self._connection

    @property
    def last_seq(self) -> int:
        """The sequence number of the last record committed."""
        with self._lock:
            return self._counter("seq")

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def next_seq(self) -> int:
        """The sequence number the next `add` will commit (reading it commits nothing)."""
        with self._lock:
            return self._counter("seq") + 1

    def seen(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM published WHERE key = ?", (key,)).fetchone() is not None

    def add(self, kind: str, record: dict, key: str | None = None) -> None:
        """Commit `record` (whose "seq" is `next_seq()`) in one transaction with its key and the counter."""
        seq = record["seq"]
        now = time.time()
        with self._lock:
            if not self.writable:
                self._open()
                if not self.writable:
                    raise sqlite3.OperationalError(self.open_error)
            if key is not None and self._db.execute("SELECT 1 FROM published WHERE key = ?", (key,)).fetchone():
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT OR REPLACE INTO counters VALUES ('seq', max(?, coalesce((SELECT value "
                    "FROM counters WHERE name = 'seq'), 0)))",
                    (seq,),
                )
                if key is not None:
                    self._db.execute("INSERT OR REPLACE INTO published VALUES (?, ?, ?)", (key, seq, now))
                if self.queue and self._make_room(kind):
                    self._db.execute("INSERT INTO outbox VALUES (?, ?, ?, ?)", (seq, kind, to_json(record), now))
                    self._pending += 1
                self._db.execute("COMMIT")
            except BaseException as error:
                rollback(self._db)
                self._pending = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
                if isinstance(error, DISK_ERRORS):
                    self.writable = False  # the next add opens the database again: a remount may have fixed it
                raise

    def _make_room(self, kind: str) -> bool:
        """Apply the bound: False when the new record is the one to drop. Called inside `add`'s transaction."""
        if self._pending < self.max_records:
            return True
        victim = self._db.execute("SELECT min(seq) FROM outbox WHERE kind = ?", (EXPENDABLE,)).fetchone()[0]
        if victim is None and self.when_full == "drop_oldest":
            victim = self._db.execute("SELECT min(seq) FROM outbox").fetchone()[0]
        dropped = self._counter("dropped") + 1
        self._db.execute("INSERT OR REPLACE INTO counters VALUES ('dropped', ?)", (dropped,))
        if time.monotonic() - self._last_full_log >= 60 or dropped == 1:
            self._last_full_log = time.monotonic()
            log.error(
                "outbox_full",
                max_records=self.max_records,
                policy=self.when_full,
                dropped_total=dropped,
                hint="the uplink has been down long; the daily files still hold every record",
            )
        if victim is None:  # drop_newest, and nothing expendable: the new record stays out
            return False
        self._db.execute("DELETE FROM outbox WHERE seq = ?", (victim,))
        self._pending -= 1
        return True

    def pending(self, after: int, limit: int, upto: int | None = None) -> list[Pending]:
        """Records waiting for the broker with after < seq <= upto, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, payload FROM outbox WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after, upto if upto is not None else 2**62, limit),
            ).fetchall()
        return [Pending(*row) for row in rows]

    def newest(self) -> int:
        with self._lock:
            return self._db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]

    def acknowledge(self, seqs: list[int]) -> None:
        """The broker has these: forget them (one transaction for a batch)."""
        if not seqs:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            removed = 0
            for seq in seqs:
                removed += self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount
            self._db.execute("COMMIT")
            self._pending -= removed

    @property
    def pending_count(self) -> int:
        """Records waiting for the broker (kept in memory: the uplink's loop asks often)."""
        return self._pending

    def stats(self) -> dict:
        with self._lock:
            oldest = self._db.execute("SELECT min(created) FROM outbox").fetchone()[0]
            dropped = self._counter("dropped")
        return {
            "outbox_pending": self._pending,
            "outbox_oldest_s": None if oldest is None else round(time.time() - oldest, 1),
            "outbox_dropped": dropped,
            "outbox_full": self._pending >= self.max_records,
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
