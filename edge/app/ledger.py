"""A replay's ledger: the recordings of a job done so far, kept in SQLite beside the detection files.

`edge replay --out DIR` is a resumable job. A run's detections are written, the files synced, and then one
transaction records the run's recordings (with their size and mtime), the new length of each detection file
and the species tally. Run the same command again after a crash, Ctrl-C or a dead node and the ledger says
what is left: the detection files are first cut back to the lengths it committed (dropping whatever a run
killed between its writes and its commit had added), and only the recordings it does not know are analysed.
So no recording's detections are ever written twice.

A recording is `done` (analysed, damaged or not), `failed` (not audio: nothing to analyse) or `quarantined`
(the worker analysing it died twice): none is analysed again. The job's settings are kept too: resuming with
other settings would mix two analyses in one set of files, so it is refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from edge.sinks.summary import SpeciesTally
from edge.storage.database import open_durable, transaction

LEDGER_NAME = "replay-ledger.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recordings (
    path BLOB PRIMARY KEY,          -- the file's absolute path, as the file system has it
    stream_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('done', 'failed', 'quarantined')),
    reason TEXT,                    -- why it failed, was quarantined, or is damaged
    detections INTEGER NOT NULL,
    finished_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (name TEXT PRIMARY KEY, length INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tally (
    scientific_name TEXT PRIMARY KEY,
    common_name TEXT NOT NULL,
    count INTEGER NOT NULL,
    max_confidence REAL NOT NULL
);
"""


class SettingsChanged(ValueError):
    """The folder holds a job analysed with other settings."""


@dataclass(frozen=True)
class Outcome:
    """What became of one recording of a run."""

    path: Path
    stream_id: str
    state: str
    reason: str | None
    detections: int


@dataclass(frozen=True)
class Known:
    stream_id: str
    size: int
    mtime_ns: int
    state: str
    reason: str | None


class Ledger:
    def __init__(self, db: sqlite3.Connection, new: bool):
        self.db = db
        self.new = new  # nothing was recorded before: the detection files start afresh

    @classmethod
    def open(cls, out: Path, settings: dict, fresh: bool = False) -> Ledger:
        """The ledger under `out` for a job with `settings` (JSON-able); `fresh` forgets an earlier job.
        Raises SettingsChanged when `out` holds a job with other settings."""
        path = out / LEDGER_NAME
        if fresh:
            for name in (LEDGER_NAME, LEDGER_NAME + "-wal", LEDGER_NAME + "-shm"):
                (out / name).unlink(missing_ok=True)
        db = open_durable(path, SCHEMA)
        wanted = json.dumps(settings, sort_keys=True)
        row = db.execute("SELECT json FROM settings").fetchone()
        if row is None:
            db.execute("INSERT INTO settings VALUES (1, ?)", (wanted,))
            return cls(db, new=True)
        if row[0] != wanted:
            db.close()
            changed = differences(json.loads(row[0]), settings)
            raise SettingsChanged(
                f"{out} holds detections of a replay with other settings ({changed}); "
                "give another --out, the same settings to go on with it, or --fresh to start it again"
            )
        return cls(db, new=False)

    def known(self) -> dict[bytes, Known]:
        rows = self.db.execute("SELECT path, stream_id, size, mtime_ns, state, reason FROM recordings")
        return {bytes(path): Known(*rest) for path, *rest in rows}

    def lengths(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, length FROM outputs"))

    def batches(self) -> int:
        """Parquet batches committed: the next one's files are named after their number."""
        names = {PurePosixPath(name).name for (name,) in self.db.execute("SELECT name FROM outputs")}
        return len([name for name in names if name.endswith(".parquet")])

    def tally(self) -> list[SpeciesTally]:
        rows = self.db.execute("SELECT scientific_name, common_name, count, max_confidence FROM tally")
        return [SpeciesTally(*row) for row in rows]

    def states(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, count(*) FROM recordings GROUP BY state"))

    def commit(self, outcomes: Iterable[Outcome], lengths: dict[str, int], tallies: Iterable[SpeciesTally]) -> None:
        """One run's recordings, the detection files' lengths after its detections and the tally it adds,
        recorded at once."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with transaction(self.db):
            for o in outcomes:
                stat = o.path.stat()
                self.db.execute(
                    "INSERT OR REPLACE INTO recordings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key(o.path), o.stream_id, stat.st_size, stat.st_mtime_ns, o.state, o.reason, o.detections, now),
                )
            self.db.executemany("INSERT OR REPLACE INTO outputs VALUES (?, ?)", lengths.items())
            for t in tallies:
                self.db.execute(
                    "INSERT INTO tally VALUES (?, ?, ?, ?) ON CONFLICT (scientific_name) DO UPDATE SET "
                    "count = count + excluded.count, max_confidence = max(max_confidence, excluded.max_confidence)",
                    (t.scientific_name, t.common_name, t.count, t.max_confidence),
                )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def key(path: Path) -> bytes:
    """A recording's key: its absolute path in bytes (a name need not be valid UTF-8)."""
    return os.fsencode(path.resolve())


def differences(before: dict, now: dict) -> str:
    changed = [name for name in sorted(before.keys() | now.keys()) if before.get(name) != now.get(name)]
    return ", ".join(f"{name} {before.get(name)!r} then, {now.get(name)!r} now" for name in changed)
