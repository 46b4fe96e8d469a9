"""SQLite as edge keeps what must survive a power cut: the recording state, the outbox, the station's store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote


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


def open_read_only(path: Path, schema: str, shared: bool = False) -> sqlite3.Connection:
    """The database at `path` for reading, when a read-only or failing disk refuses to open it for writing.

    A WAL database opens read-only only if its -wal and -shm files exist (after a crash) or can be created;
    otherwise (closed cleanly, its WAL folded in and removed) it is read as immutable. When it cannot be read
    at all (no file yet, on a folder that cannot take one), an empty database in memory stands in: `schema`
    applied, nothing known."""
    for query in ("mode=ro", "immutable=1"):
        try:
            db = sqlite3.connect(
                f"file:{quote(str(path))}?{query}", uri=True, isolation_level=None, check_same_thread=not shared
            )
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error:
            continue
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=not shared)
    db.executescript(schema)
    return db


def rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already (it rolls back by itself on a full disk)."""
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # a failing disk: the journal undoes the transaction when the database is next opened


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (taking the write lock at once), committed at the end of the block, rolled back if
    it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        rollback(db)  # a failed COMMIT may have rolled back already
        raise
