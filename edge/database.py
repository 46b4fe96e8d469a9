"""SQLite as edge keeps what must survive a power cut: the recording state, the outbox, the station's store."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def make_durable(db: sqlite3.Connection) -> None:
    """WAL, and FULL synchronisation: a commit that returned is on the storage, whatever happens next."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")


def open_durable(path: Path, schema: str, shared: bool = False) -> sqlite3.Connection:
    """The database at `path` (its folder created), in autocommit mode (transactions are explicit), durable,
    with `schema` applied. `shared`: usable from several threads, which then take a lock of their own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=not shared)
    make_durable(db)
    db.executescript(schema)
    return db
