"""The clips boxes send (`edge.clip/1` on `<prefix>/<box>/clips`), each kept once: its FLAC a file below the
clip folder, its row in the store's clips table, kept by age and by the folder's total size.

A clip is known by its box and id (its event's or alert's id): a clip the broker delivers again after a
reconnection finds its row and is not written twice. The file is written first (temporary file, fsync,
rename), its row committed next, and only then is the message acknowledged: a station stopped in between
has at worst a file without a row, which the clip's next delivery writes again under the same name. A clip
the box refused for speech has a row and no file. Pruning deletes the file first, then marks the row
(path null, pruned_utc): the ranger still learns there was a clip. The spectrogram the pages drew of a clip
(edge.station.spectrogram), or the reason it was not drawn, is kept beside it and goes with it.

File names are built from the box id (already held to letters, digits, '.', '_' and '-') and a safe form of
the clip's id, never from the id as received: `<box>/<UTC day>/<id>.flac`.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from edge.clips.store import TEMP_SUFFIX, remove_if_empty, write_atomically
from edge.station import spectrogram
from edge.station.messages import RecordError
from edge.station.schemas import MAX_CLIP_BYTES, clip_problem, shown
from edge.station.store import MAX_KEPT_BYTES, Store
from edge.wire.clips import FLAC_MAGIC, MAX_METADATA_BYTES, ClipMessageError, check_sound, unframe
from edge.wire.records import iso

log = structlog.get_logger(__name__)

# The largest clip message taken: the audio, its metadata line and the newline.
MAX_MESSAGE_BYTES = MAX_CLIP_BYTES + MAX_METADATA_BYTES + 1
MAX_AGE_DAYS = 90.0
MAX_MEGABYTES = 2000.0
PRUNE_EVERY_S = 3600.0  # age runs out while no clip arrives too
UNSAFE = re.compile(r"[^A-Za-z0-9_-]")  # '.' too: no id may become '..' or a hidden name
COLUMNS = (
    "box",
    "id",
    "kind",
    "scientific_name",
    "common_name",
    "alert_class",
    "start_utc",
    "end_utc",
    "duration_s",
    "sample_rate",
)


class ClipError(RecordError):
    """A message on a clips topic that is no clip a box sends; its text is the reason."""


@dataclass(frozen=True)
class Clip:
    """A checked clip message: its metadata (see edge.station.schemas.CLIP) and its FLAC bytes (none when
    refused)."""

    box: str
    metadata: dict
    audio: bytes
    received_utc: str

    @property
    def id(self) -> str:
        return self.metadata["id"]


def default_folder(db_path: Path) -> Path:
    """Where the clips go unless told: `clips` beside the station's database."""
    return db_path.parent / "clips"


def parse_clip(box: str, payload: bytes, received_utc: str) -> Clip:
    """The clip of a message on `box`'s clips topic; ClipError when it is not an intact one, or when its FLAC
    declares other audio than its metadata says (checked from the FLAC's header: nothing is decoded)."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ClipError(f"clip message of {len(payload)} bytes is larger than {MAX_MESSAGE_BYTES}")
    try:
        metadata, audio = unframe(payload)
        if problem := clip_problem(metadata):
            raise ClipError(problem)
        if metadata["box"] != box:
            raise ClipError(f"box {shown(metadata['box'])} of the clip is not the topic's {box!r}")
        if audio:
            check_sound(audio, metadata["sample_rate"], metadata["duration_s"])
    except ClipMessageError as error:
        raise ClipError(str(error)) from None
    return Clip(box, metadata, audio, received_utc)


def head(payload: bytes) -> bytes:
    """What a rejected clip message leaves in the rejected table: what comes before its first newline (the
    metadata line) or FLAC marker, never the audio."""
    ends = [at for mark in (b"\n", FLAC_MAGIC) if (at := payload.find(mark, 0, MAX_KEPT_BYTES)) >= 0]
    return payload[: min(ends, default=MAX_KEPT_BYTES)]


def file_stem(clip_id: str) -> str:
    """The clip id as a file name: itself when it is made of safe characters (a UUID is), else its safe
    characters and a hash of the whole id, so that two ids never share a name."""
    safe = UNSAFE.sub("_", clip_id)
    return safe if safe == clip_id else f"{safe}-{hashlib.sha256(clip_id.encode()).hexdigest()[:12]}"


def start_utc(start: str | None, received_utc: str) -> datetime:
    """When a clip begins, in UTC: the box's time, or when the station received it where the box did not know
    the time (or gave one that UTC cannot hold, such as year 1 at +05:00)."""
    try:
        return datetime.fromisoformat(start or received_utc).astimezone(UTC)
    except OverflowError:
        return datetime.fromisoformat(received_utc).astimezone(UTC)


def utc_day(clip: Clip) -> str:
    return start_utc(clip.metadata["start_utc"], clip.received_utc).date().isoformat()


class ClipArchive:
    """The clip folder and its rows; `max_age_days` and `max_megabytes` (None: no limit) bound what is kept.
    Written by one thread (the subscriber's), like the store."""

    def __init__(
        self,
        store: Store,
        folder: Path,
        max_age_days: float | None = MAX_AGE_DAYS,
        max_megabytes: float | None = MAX_MEGABYTES,
    ):
        self.store, self.folder = store, folder
        self.max_age_days = max_age_days
        self.max_bytes = None if max_megabytes is None else int(max_megabytes * 1_000_000)
        self._next_prune = 0.0

    def remove_temporary(self) -> None:
        """Temporary files a station stopped mid-write left behind (their clip comes again)."""
        for path in self.folder.glob(f"*/*/.*{TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)
            log.info("clip_temp_removed", path=str(path))

    def add(self, clip: Clip) -> bool:
        """Keeps the clip, once; False when its box and id were stored already. OSError when its file cannot
        be written, sqlite3.Error when its row cannot: nothing is then acknowledged, and it comes again."""
        db = self.store.db
        known = db.execute("SELECT sha256 FROM clips WHERE box = ? AND id = ?", (clip.box, clip.id)).fetchone()
        if known is not None:
            if known["sha256"] != clip.metadata["sha256"]:
                log.warning("clip_differs", box=clip.box, id=clip.id, kept=known["sha256"])
            return False
        relative = None
        if clip.audio:
            relative = f"{clip.box}/{utc_day(clip)}/{file_stem(clip.id)}.flac"
            write_atomically(self.folder / relative, clip.audio)
        m = clip.metadata
        with self.store.transaction():
            db.execute(
                f"INSERT OR IGNORE INTO clips ({', '.join(COLUMNS)}, path, bytes, sha256, refused, received_utc) "
                f"VALUES ({', '.join('?' * (len(COLUMNS) + 5))})",
                (clip.box, *(m[name] for name in COLUMNS[1:]), relative, len(clip.audio), m["sha256"])
                + (m["refused"], clip.received_utc),
            )
            db.execute("INSERT OR IGNORE INTO boxes (box) VALUES (?)", (clip.box,))
        self.prune()
        return True

    def prune_due(self) -> None:
        """Prunes once an hour: clips run out of age while none arrives."""
        if time.monotonic() >= self._next_prune:
            self.prune()

    def prune(self, now: datetime | None = None) -> int:
        """Deletes the files of clips older than max_age_days, then the oldest while the folder is over
        max_megabytes; their rows stay, marked pruned. The number pruned. sqlite3.Error when the database
        cannot be written."""
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        now = now or datetime.now(UTC)
        db = self.store.db
        oldest = "SELECT box, id, path, bytes FROM clips WHERE path IS NOT NULL {} ORDER BY received_utc, rowid LIMIT 1"
        pruned = 0
        if self.max_age_days is not None:
            cutoff = iso(now - timedelta(days=self.max_age_days))
            while (row := db.execute(oldest.format("AND received_utc < ?"), (cutoff,)).fetchone()) is not None:
                if not self._prune(row, now):
                    break
                pruned += 1
        if self.max_bytes is not None:
            total = db.execute("SELECT coalesce(sum(bytes), 0) FROM clips WHERE path IS NOT NULL").fetchone()[0]
            while total > self.max_bytes and (row := db.execute(oldest.format("")).fetchone()) is not None:
                if not self._prune(row, now):
                    break
                total -= row["bytes"]
                pruned += 1
        if pruned:
            log.info("clips_pruned", pruned=pruned, folder=str(self.folder))
        return pruned

    def _prune(self, row, now: datetime) -> bool:
        path = self.folder / row["path"]
        try:
            path.unlink(missing_ok=True)
            spectrogram.forget(path)
        except OSError as error:
            log.error("clip_delete_failed", path=row["path"], error=str(error))
            return False
        remove_if_empty(path.parent, self.folder)
        with self.store.transaction():
            self.store.db.execute(
                "UPDATE clips SET path = NULL, pruned_utc = ? WHERE box = ? AND id = ?",
                (iso(now), row["box"], row["id"]),
            )
        return True
