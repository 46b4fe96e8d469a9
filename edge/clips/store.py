"""The folder of FLAC clips on the box's card: written once each, atomically, and pruned by age, size and the
card's free space, so that clips never crowd out the outbox, the state and the logs that share the card.

A clip is encoded in memory first: its exact size is then known before anything touches the card, room is
made for it, and it goes to a hidden temporary file in its day folder, is fsync'd and renamed. A power cut
leaves at worst a temporary file, removed at the next start, never a half clip under a final name. A clip is
never opened for writing again (SD cards wear with rewrites): a name that exists is kept as it is.

Nothing here raises on a full, read-only or failing card: the failure is logged, counted and reported.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import structlog

from edge.storage.faults import StorageFault, in_words

log = structlog.get_logger(__name__)

SUFFIX = ".flac"
TEMP_SUFFIX = ".tmp"
BLOCK = 4096  # a file takes whole blocks of the card; free-space checks count in them
# Errors of a full card: the clip is dropped, the card reported full.
FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class _Clip:
    mtime: float  # seconds since the epoch: when it was written
    size: int  # bytes


def encode_flac(samples: np.ndarray, rate: int, metadata: Mapping[str, str]) -> bytes:
    """16-bit FLAC of mono `samples` (int16 are stored as they are, floats in [-1, 1) scaled by libsndfile).

    `metadata` keys are those of soundfile (title, comment, date, software, artist...): FLAC vorbis comments,
    which must be set before the first sample is written."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", rate, 1, "PCM_16", format="FLAC") as f:
        for key, value in metadata.items():
            setattr(f, key, value)
        f.write(samples)
    return buffer.getvalue()


def errno_name(error: OSError) -> str:
    """ENOSPC, EROFS...: the code a log line names, "" when the error has none."""
    return "" if error.errno is None else errno.errorcode.get(error.errno, "")


def temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{TEMP_SUFFIX}")


class ClipStore:
    """The clip folder and its retention: `max_age_days` (None: no limit), `max_megabytes` (None: no limit)
    for the folder's total size, `min_free_percent` (0: no limit) of the filesystem that must stay free.

    The folder is scanned once, here; after that the index of clips (oldest first, by time written) and
    their total size are kept up to date by `write` and `prune`, so that pruning reads no directory."""

    def __init__(
        self,
        directory: Path,
        max_age_days: float | None = None,
        max_megabytes: float | None = None,
        min_free_percent: float = 0.0,
    ):
        self.directory = Path(directory)
        self.max_age_days = max_age_days
        self.max_bytes = None if max_megabytes is None else int(max_megabytes * 1_000_000)
        self.min_free_percent = min_free_percent
        self.written = self.deleted = self.failed = 0
        self.disk_full = False
        self.fault: StorageFault | None = None  # the error of the last write, until a write succeeds
        self._clips: dict[str, _Clip] = {}
        self.total_bytes = 0
        self._scan()

    def _scan(self) -> None:
        """Index the clips already there, remove the temporary files a power cut left behind."""
        found = []
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for path in self.directory.rglob("*"):
                if path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX):
                    path.unlink(missing_ok=True)
                    log.info("clip_temp_removed", path=str(path))
                elif path.suffix == SUFFIX and path.is_file():
                    st = path.stat()
                    found.append((st.st_mtime, path.relative_to(self.directory).as_posix(), st.st_size))
        except OSError as error:
            log.error(
                "clip_directory_unusable", directory=str(self.directory), error=str(error), errno=errno_name(error)
            )
        for mtime, relative, size in sorted(found):
            self._clips[relative] = _Clip(mtime, size)
            self.total_bytes += size

    def write(
        self, relative_path: str, samples: np.ndarray, rate: int, metadata: Mapping[str, str] | None = None
    ) -> bool:
        """Write one clip at `relative_path` (below the folder) after making room for it. True when the clip is
        on the card (or already was: it is not written again), False when it could not be written."""
        target = self.directory / relative_path
        if relative_path in self._clips or os.path.lexists(target):
            log.info("clip_exists", path=relative_path)
            return True
        data = encode_flac(samples, rate, metadata or {})
        # Room is made only for a clip that can fit at all: one larger than the quota, or than what deleting every
        # clip would free, must not empty the folder for nothing.
        deleted = self._prune(time.time(), len(data) if self._could_fit(len(data)) else 0)
        if self._over(len(data)):
            self.failed += 1
            self.disk_full = True
            log.warning(
                "clip_no_room",
                path=relative_path,
                bytes=len(data),
                clips_bytes=self.total_bytes,
                max_bytes=self.max_bytes,
                min_free_percent=self.min_free_percent,
            )
            return False
        try:
            write_atomically(target, data)
        except OSError as error:
            self.failed += 1
            self.disk_full = error.errno in FULL
            if self.fault is None:
                self.fault = StorageFault("clips", in_words(error))
            log.error("clip_write_failed", path=relative_path, errno=errno_name(error), error=str(error))
            remove_if_empty(target.parent, self.directory)
            return False
        self._clips[relative_path] = _Clip(time.time(), len(data))
        self.total_bytes += len(data)
        self.written += 1
        self.disk_full = False
        self.fault = None
        log.info(
            "clip_written",
            path=relative_path,
            bytes=len(data),
            seconds=round(len(samples) / rate, 2),
            deleted_for_room=deleted,
        )
        return True

    def prune(self, now: float | None = None) -> int:
        """Delete clips older than max_age_days, then the oldest ones while the folder is over its size or the
        card below its free space. Cheap (no directory is read): call it as often as the health record.
        The number of clips deleted."""
        deleted = self._prune(time.time() if now is None else now, incoming=0)
        if deleted:
            log.info("clips_pruned", deleted=deleted, clips=len(self._clips), clips_bytes=self.total_bytes)
        return deleted

    def _prune(self, now: float, incoming: int) -> int:
        """Delete what retention asks for, with room for `incoming` more bytes."""
        before = self.deleted
        if self.max_age_days is not None:
            cutoff = now - self.max_age_days * 86400
            for relative in [r for r, clip in self._clips.items() if clip.mtime < cutoff]:
                self._delete(relative, "age")
        while self._clips and self._over(incoming):
            if not self._delete(next(iter(self._clips)), "space"):
                break
        return self.deleted - before

    def _could_fit(self, incoming: int) -> bool:
        """Would `incoming` bytes fit once every clip is deleted?"""
        if self.max_bytes is not None and incoming > self.max_bytes:
            return False
        return self.min_free_percent <= 0 or not self._below_free(incoming - self.total_bytes)

    def _over(self, incoming: int) -> bool:
        """Would `incoming` more bytes put the folder over its size or the card under its free space?"""
        if self.max_bytes is not None and self.total_bytes + incoming > self.max_bytes:
            return True
        return self.min_free_percent > 0 and self._below_free(incoming)

    def _below_free(self, incoming: int) -> bool:
        """Would the card's free space fall below min_free_percent after `incoming` more bytes?"""
        try:
            usage = shutil.disk_usage(self.directory)
        except OSError:
            return False  # the write will tell what is wrong
        blocks = -(-incoming // BLOCK) * BLOCK + BLOCK * (incoming > 0)  # whole blocks, and one for the entry
        return 100 * (usage.free - blocks) < self.min_free_percent * usage.total

    def _delete(self, relative: str, reason: str) -> bool:
        path = self.directory / relative
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            log.error("clip_delete_failed", path=relative, errno=errno_name(error), error=str(error))
            return False
        clip = self._clips.pop(relative)
        self.total_bytes -= clip.size
        self.deleted += 1
        log.debug("clip_deleted", path=relative, reason=reason)
        remove_if_empty(path.parent, self.directory)
        return True

    def stats(self) -> dict[str, int | bool]:
        """Counters for the health record."""
        return {
            "clips_written": self.written,
            "clips_deleted": self.deleted,
            "clips_failed": self.failed,
            "clips_bytes": self.total_bytes,
            "clips_count": len(self._clips),
            "clips_disk_full": self.disk_full,
        }


def write_atomically(target: Path, data: bytes) -> None:
    """`data` to a temporary file beside `target`, fsync'd, renamed, the folder fsync'd: all or nothing under
    the final name. On failure the temporary file is removed and the error raised."""
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        _fsync_directory(target.parent.parent)
    temp = temp_path(target)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, target)
    except OSError:
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a new entry of `directory` durable (a rename is not, until its folder is synced). Best effort: the
    clip is complete either way, and a filesystem may refuse to sync a folder."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        log.debug("clip_folder_sync_failed", directory=str(directory), error=str(error))


def remove_if_empty(directory: Path, root: Path) -> None:
    """A day folder goes with its last clip."""
    if directory != root:
        try:
            directory.rmdir()
        except OSError:
            pass
