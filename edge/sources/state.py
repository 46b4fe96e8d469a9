"""What the daemon has done with each recording it was given: a small SQLite database (WAL, synchronous writes).

A recording is known by its path inside the watched folder, its size and its modification time, so that a
restart neither repeats a finished recording nor skips one, and a recorder that reuses a name is not ignored.
Paths are stored as `edge.storage.file_names.shown` writes them: a name that is not UTF-8 is kept exactly.

On a full or read-only disk the analysis goes on: a change the database refuses is kept in memory (`unsaved`,
with the fault for the health record) and written at the next change or `save()` once the disk takes it again.
A restart before that may analyse those recordings again; their events are then not published twice (the
outbox knows their keys), and the files that were moved away are not seen again. Pausing the folder instead
would keep the files safe but silence the box, threat alerts included, until someone came to fix the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from edge.storage.database import open_durable, open_read_only, rollback
from edge.storage.faults import DISK_ERRORS, StorageFault, in_words
from edge.types import utc_now

log = structlog.get_logger(__name__)

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
CREATE TABLE IF NOT EXISTS stream_ends (
    recorder TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    instance TEXT NOT NULL,
    started_utc TEXT,
    sample_rate INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    end_sample INTEGER NOT NULL
);
"""

FINAL = ("done", "quarantined")
COLUMNS = ("key", "path", "status", "attempts", "started_utc", "finished_utc", "audio_seconds", "error")
END_COLUMNS = ("recorder", "stream_id", "instance", "started_utc", "sample_rate", "channels", "end_sample")


@dataclass(frozen=True)
class Recording:
    key: str
    path: str
    status: str
    attempts: int
    error: str | None


def recording_key(relative: str, size: int, mtime_ns: int) -> str:
    return f"{relative}|{size}|{mtime_ns}"


class RecordingState:
    """Owned by one thread (the daemon's loop); every change is committed before the call returns, or kept in
    memory while the disk refuses it."""

    def __init__(self, path: Path):
        # A recording marked done survives a power cut, so it is not analysed twice.
        self.path = path
        self.fault: StorageFault | None = None
        self._unsaved: dict[str, tuple] = {}  # key -> its row (COLUMNS), not yet committed
        self._unsaved_ends: dict[str, tuple | None] = {}  # recorder -> its row (END_COLUMNS), None: forgotten
        try:
            self._db = open_durable(path, SCHEMA)
            self._writable = True
        except DISK_ERRORS as error:
            self._db = open_read_only(path, SCHEMA)
            self._writable = False
            self._failed(error)

    def get(self, key: str) -> Recording | None:
        row = self._row(key)
        return Recording(row[0], row[1], row[2], row[3], error=row[7]) if row else None

    def _row(self, key: str) -> tuple | None:
        if key in self._unsaved:
            return self._unsaved[key]
        return self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM recordings WHERE key = ?", (key,)).fetchone()

    def begin(self, key: str, path: str) -> int:
        """Mark a recording as being analysed; returns how many times that has now been started."""
        row = self._row(key) or (key, path, "processing", 0, None, None, None, None)
        self._change((key, path, "processing", row[3] + 1, utc_now(), *row[5:]))
        return row[3] + 1

    def release(self, key: str) -> None:
        """An analysis stopped on purpose (shutdown, an output that failed): not counted as cut off."""
        row = self._row(key)
        if row is not None:
            self._change((*row[:3], max(row[3] - 1, 0), *row[4:]))

    def finish(
        self,
        key: str,
        path: str,
        status: str,
        audio_seconds: float = 0.0,
        error: str | None = None,
        stream_end: tuple | None = None,
    ):
        """The outcome of a recording, and (`stream_end`, END_COLUMNS) where its recorder's stream then stands,
        committed together: a restart continues the stream at the next file, never inside this one."""
        if status not in FINAL:
            raise ValueError(f"status {status!r} is not one of {FINAL}")
        row = self._row(key)
        attempts, started = (row[3], row[4]) if row else (0, None)
        if stream_end is not None:
            self._unsaved_ends[stream_end[0]] = stream_end
        self._change((key, path, status, attempts, started, utc_now(), audio_seconds, error))

    def stream_end(self, recorder: str) -> tuple | None:
        """Where the recorder's stream stood after its last file (END_COLUMNS), unless it has ended since."""
        if recorder in self._unsaved_ends:
            return self._unsaved_ends[recorder]
        return self._db.execute(
            f"SELECT {', '.join(END_COLUMNS)} FROM stream_ends WHERE recorder = ?", (recorder,)
        ).fetchone()

    def forget_stream_end(self, recorder: str) -> None:
        """The recorder's stream has ended: its next file begins a stream of its own."""
        if self.stream_end(recorder) is not None:
            self._unsaved_ends[recorder] = None
            self.save()

    def _change(self, row: tuple) -> None:
        self._unsaved[row[0]] = row
        self.save()

    def save(self) -> None:
        """Commit the changes kept in memory, if the disk takes them now."""
        if not self._unsaved and not self._unsaved_ends:
            return
        try:
            if not self._writable:
                db = open_durable(self.path, SCHEMA)
                self._db.close()
                self._db, self._writable = db, True
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                f"INSERT OR REPLACE INTO recordings ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                self._unsaved.values(),
            )
            self._db.executemany(
                f"INSERT OR REPLACE INTO stream_ends VALUES ({', '.join('?' * len(END_COLUMNS))})",
                [row for row in self._unsaved_ends.values() if row is not None],
            )
            self._db.executemany(
                "DELETE FROM stream_ends WHERE recorder = ?",
                [(recorder,) for recorder, row in self._unsaved_ends.items() if row is None],
            )
            self._db.execute("COMMIT")
        except DISK_ERRORS as error:
            rollback(self._db)
            self._writable = False  # opened again at the next save: a remount may have fixed it
            self._failed(error)
            return
        if self.fault is not None:
            log.info(
                "state_saved_again", path=str(self.path), recordings=len(self._unsaved), since_utc=self.fault.since_utc
            )
        self._unsaved.clear()
        self._unsaved_ends.clear()
        self.fault = None

    def _failed(self, error: BaseException) -> None:
        words = in_words(error, self.path)
        if self.fault is None:
            self.fault = StorageFault("state", words)
            log.error(
                "state_not_saved",
                path=str(self.path),
                error=words,
                hint="analysis goes on; what is done is kept in memory until the disk takes it",
            )
        self.fault.error, self.fault.waiting = words, len(self._unsaved)

    def close(self) -> None:
        self.save()
        if self._unsaved:
            log.error(
                "state_not_saved_at_stop",
                path=str(self.path),
                recordings=len(self._unsaved),
                hint="these recordings may be analysed again at the next start",
            )
        self._db.close()
