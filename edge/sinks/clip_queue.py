"""Clips waiting for the uplink: which goes next, and whether the link's byte budget lets it go now.

A clip is queued once (by its id: the id of its event or alert), in the outbox's database beside the records,
and leaves the queue only when the broker has acknowledged it, or when it is dropped: older than `max_age`,
bigger than a whole hour's budget, or its file gone from the card. The audio stays in its file in the clip
folder: the queue holds its path and metadata, not the bytes.

Order: alerts before events; among alerts the newest first (a ranger acts on the latest), among events the
oldest first. The budget is a sliding hour: a clip goes when the bytes sent in the last hour plus its own stay
within `bytes_per_hour`. What was sent is kept in the database, so a restart does not spend the hour again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.storage.database import open_durable, rollback

SCHEMA = """
CREATE TABLE IF NOT EXISTS clip_queue (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    path TEXT,
    metadata TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS clips_sent (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS clip_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

HOUR = 3600.0
ClipKind = Literal["alert", "event"]


@dataclass(frozen=True)
class QueuedClip:
    id: str
    kind: ClipKind
    path: str | None  # below the clip folder; None for a clip the privacy gate refused (no audio)
    metadata: dict
    bytes: int


class ClipQueue:
    """Shared by the daemon's loop (which adds) and the uplink's thread (which takes and acknowledges)."""

    def __init__(self, path: Path, bytes_per_hour: int, max_age: float, clock=time.time):
        self.bytes_per_hour = bytes_per_hour
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection = open_durable(path, SCHEMA, shared=True)

    def add(self, clip: QueuedClip) -> bool:
        """Queue a clip; False when one of that id was queued (or sent) already."""
        with self._transaction():
            if self._db.execute("SELECT 1 FROM clips_sent WHERE id = ?", (clip.id,)).fetchone():
                return False
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO clip_queue VALUES (?, ?, ?, ?, ?, ?)",
                (clip.id, clip.kind, clip.path, json.dumps(clip.metadata), clip.bytes, self._clock()),
            )
            return cursor.rowcount == 1

    def next(self) -> QueuedClip | None:
        """The clip to send now, or None: none waiting, or the next one waits for the budget. Drops, and counts,
        what can never go (too old, bigger than an hour's budget)."""
        now = self._clock()
        with self._transaction():
            self._drop("clips_too_old", "created < ?", (now - self.max_age,))
            self._drop("clips_too_big", "bytes > ?", (self.bytes_per_hour,))
            row = self._db.execute(
                "SELECT id, kind, path, metadata, bytes FROM clip_queue "
                "ORDER BY kind = 'alert' DESC, CASE WHEN kind = 'alert' THEN -created ELSE created END, id LIMIT 1"
            ).fetchone()
            if row is None or self._spent(now) + row[4] > self.bytes_per_hour:
                return None
        return QueuedClip(row[0], row[1], row[2], json.loads(row[3]), row[4])

    def acknowledge(self, clip: QueuedClip) -> None:
        """The broker has it: out of the queue, its bytes spent from the hour."""
        with self._transaction():
            self._db.execute("DELETE FROM clip_queue WHERE id = ?", (clip.id,))
            self._db.execute("INSERT OR IGNORE INTO clips_sent VALUES (?, ?, ?)", (clip.id, clip.bytes, self._clock()))
            self._db.execute("DELETE FROM clips_sent WHERE at < ?", (self._clock() - 30 * 86400,))

    def drop(self, clip: QueuedClip, reason: str) -> None:
        """Give up on a clip that cannot be sent (its file is gone from the card); counted under `reason`."""
        with self._transaction():
            if self._db.execute("DELETE FROM clip_queue WHERE id = ?", (clip.id,)).rowcount:
                self._count(reason, 1)

    def stats(self) -> dict[str, int]:
        now = self._clock()
        with self._lock:
            waiting, waiting_bytes = self._db.execute(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM clip_queue"
            ).fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM clip_counters").fetchall())
            sent = self._db.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM clips_sent").fetchone()
            return {
                "clips_waiting": waiting,
                "clips_waiting_bytes": waiting_bytes,
                "clips_sent": sent[0],
                "clips_sent_bytes": sent[1],
                "clip_bytes_last_hour": self._spent(now),
                "clips_dropped": sum(counters.values()),
                **{name: counters.get(name, 0) for name in ("clips_too_old", "clips_too_big", "clips_file_gone")},
            }

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """The lock, and one transaction: all of the block is committed, or none of it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                rollback(self._db)
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _spent(self, now: float) -> int:
        return self._db.execute(
            "SELECT coalesce(sum(bytes), 0) FROM clips_sent WHERE at > ?", (now - HOUR,)
        ).fetchone()[0]

    def _drop(self, counter: str, where: str, values: tuple) -> None:
        dropped = self._db.execute(f"DELETE FROM clip_queue WHERE {where}", values).rowcount
        if dropped:
            self._count(counter, dropped)

    def _count(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO clip_counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, n),
        )
