"""What the daemon has done with each recording it was given: a small SQLite database (WAL, synchronous writes).

A recording is known by its path inside the watched folder, its size and its modification time, so that a
restart neither repeats a finished recording nor skips one, and a recorder that reuses a name is not ignored.
Paths are stored as `edge.file_names.shown` writes them: a name that is not UTF-8 is kept exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edge.database import open_durable

SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    key TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('processing', 'done', 'quarantined')),
    attempts INTEGER NOT NULL DEFAULT 0,
    started_utc TEXT,
    finished_utc TEXT,
    audio_seconds REAL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS recordings_status ON recordings (status);
"""

FINAL = ("done", "quarantined")


@dataclass(frozen=True)
class Recording:
    key: str
    path: str
    status: str
    attempts: int
    error: str | None


def recording_key(relative: str, size: int, mtime_ns: int) -> str:
    return f"{relative}|{size}|{mtime_ns}"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class RecordingState:
    """Owned by one thread (the daemon's loop); every change is committed before the call returns."""

    def __init__(self, path: Path):
        # A recording marked done survives a power cut, so it is not analysed twice.
        self._db = open_durable(path, SCHEMA)

    def get(self, key: str) -> Recording | None:
        row = self._db.execute(
            "SELECT key, path, status, attempts, error FROM recordings WHERE key = ?", (key,)
        ).fetchone()
        return Recording(*row) if row else None

    def begin(self, key: str, path: str) -> int:
        """Mark a recording as being analysed; returns how many times that has now been started."""
        self._db.execute(
            "INSERT INTO recordings (key, path, status, attempts, started_utc) VALUES (?, ?, 'processing', 1, ?) "
            "ON CONFLICT (key) DO UPDATE SET status = 'processing', attempts = attempts + 1, "
            "started_utc = excluded.started_utc",
            (key, path, utc_now()),
        )
        return self.get(key).attempts

    def release(self, key: str) -> None:
        """An analysis stopped on purpose (shutdown, an output that failed): not counted as cut off."""
        self._db.execute("UPDATE recordings SET attempts = MAX(attempts - 1, 0) WHERE key = ?", (key,))

    def finish(self, key: str, path: str, status: str, audio_seconds: float = 0.0, error: str | None = None):
        if status not in FINAL:
            raise ValueError(f"status {status!r} is not one of {FINAL}")
        self._db.execute(
            "INSERT INTO recordings (key, path, status, attempts, finished_utc, audio_seconds, error) "
            "VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET status = excluded.status, "
            "finished_utc = excluded.finished_utc, audio_seconds = excluded.audio_seconds, error = excluded.error",
            (key, path, status, utc_now(), audio_seconds, error),
        )

    def close(self) -> None:
        self._db.close()
