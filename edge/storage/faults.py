"""Stores on disks that may fill up or turn read-only: what the fault is, in words, and how much room is left.

A full card or a card remounted read-only after an error is a field condition, not a bug: the daemon's stores
(daily files, outbox, recording state, clips) report it here and keep the box analysing; the health record
carries each store's free space and its current fault.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edge.types import utc_now

# What a store's write may raise when its disk fails (full, read-only, I/O error): SQLite reports the same
# conditions as sqlite3.OperationalError ("database or disk is full", "attempt to write a readonly database").
DISK_ERRORS = (OSError, sqlite3.OperationalError)


def in_words(error: BaseException, path: Path | None = None) -> str:
    """`No space left on device (ENOSPC)`, `database or disk is full (SQLITE_FULL)`: the cause, as a field user
    reads it, then its code. SQLite often names only the symptom (`unable to open database file`): then the
    state of the disk that holds `path` is added, when it is read-only."""
    if isinstance(error, OSError) and error.errno is not None:
        return f"{os.strerror(error.errno)} ({errno.errorcode.get(error.errno, error.errno)})"
    name = getattr(error, "sqlite_errorname", None)
    words = f"{error} ({name})" if name else str(error)
    if path is not None and "(EROFS)" not in words and is_read_only(path):
        words += f"; {os.strerror(errno.EROFS)} (EROFS)"
    return words


def is_read_only(path: Path) -> bool:
    """Is the filesystem that holds `path` (or its nearest existing folder) mounted read-only?"""
    path = existing(path)
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def existing(path: Path) -> Path:
    """`path`, or its nearest folder that exists."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@dataclass
class StorageFault:
    """A store that cannot write: since when, why; `waiting` records held in memory for it."""

    store: str
    error: str
    since_utc: str = field(default_factory=utc_now)
    waiting: int = 0

    def as_record(self) -> dict:
        return {"store": self.store, "error": self.error, "since_utc": self.since_utc, "waiting": self.waiting}


def disk_of(path: Path) -> dict[str, float | str] | None:
    """Free space of the filesystem that holds `path` (or would: the nearest folder that exists), or None."""
    try:
        usage = shutil.disk_usage(existing(path))
    except OSError:
        return None
    return {
        "free_mb": round(usage.free / 1e6, 1),
        "free_percent": round(100 * usage.free / usage.total, 1) if usage.total else 0.0,
    }


def disks_of(stores: Mapping[str, Path]) -> dict[str, dict]:
    """Free space per store, each with its path."""
    found = {}
    for store, path in stores.items():
        usage = disk_of(path)
        if usage is not None:
            found[store] = {"path": str(path), **usage}
    return found
