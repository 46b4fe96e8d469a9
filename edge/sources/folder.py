"""The folder a recorder writes to: files analysed once each, in recording-time order, as they become complete.

A file is complete when it was closed after writing (inotify) or moved in, or when its size and modification
time have not changed for `settle_seconds` (a network share sends no close event; a file already there at
start-up may still be open). What was done with each file is kept in `RecordingState`, so a restart neither
repeats nor skips one; a damaged file is moved to the quarantine folder with a note of its error.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Literal
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel, ConfigDict, Field
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from edge.sources.files import (AUDIO_SUFFIXES, AudioError, DecodeOptions, ZoneName, decode, recording_time,
                                sort_key)
from edge.state import FINAL, RecordingState, recording_key
from edge.types import AudioChunk

log = structlog.get_logger(__name__)

POLL_SECONDS = 1.0
NOTIFICATION_QUEUE = 10_000


class FolderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["folder"] = "folder"
    path: Path = Field(description="Folder the recorder writes to; sub-folders are watched too.")
    after: Literal["move", "delete", "keep"] = Field(
        "move", description="What to do with a file once analysed: move it to `done_dir`, delete it, or leave it.")
    done_dir: Path | None = Field(None, description="Where analysed files go (default: <data_dir>/done).")
    quarantine_dir: Path | None = Field(
        None, description="Where damaged files go, each with a .error.txt (default: <data_dir>/quarantine).")
    settle_seconds: float = Field(
        10.0, gt=0, description="A file not seen closed is complete once unchanged for this long, seconds.")
    rescan_seconds: float = Field(
        60.0, gt=0, description="Full rescan of the folder, seconds: a safety net for lost notifications.")
    timezone: ZoneName = Field("UTC", description="Zone of recorder clocks whose file names carry none.")
    channel: int | None = Field(None, ge=0, description="Channel to analyse (0-based); default: the mix-down.")
    max_attempts: int = Field(
        3, ge=1, description="A file whose analysis was cut off (crash, power loss) this often is quarantined.")


@dataclass
class _Candidate:
    """A file seen in the folder, waiting to be complete."""

    path: Path
    size: int
    mtime_ns: int
    changed_at: float  # monotonic time its size or mtime last changed
    closed: bool  # closed after writing (or moved in) since that change
    sort_time: datetime | None = None
    sort_known: bool = False


class _Notifications(FileSystemEventHandler):
    """Runs on the watchdog thread: hands paths to the loop through a bounded queue, never blocks."""

    def __init__(self, paths: queue.Queue, overflowed: threading.Event):
        self.paths = paths
        self.overflowed = overflowed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "closed", "moved"):
            return
        path, complete = (event.dest_path, True) if event.event_type == "moved" else (event.src_path, False)
        try:
            self.paths.put_nowait((os.fsdecode(path), complete or event.event_type == "closed"))
        except queue.Full:
            self.overflowed.set()  # the loop rescans the folder instead


class FolderSource:
    live = False  # a recorder's files wait on the card until analysed

    def __init__(self, config: FolderConfig, state: RecordingState, done_dir: Path, quarantine_dir: Path,
                 clock=time.monotonic):
        self.config = config
        self.root = config.path.resolve()
        self.state = state
        self.done_dir = done_dir.resolve()
        self.quarantine_dir = quarantine_dir.resolve()
        self.decode_options = DecodeOptions(channel=config.channel, naive_zone=ZoneInfo(config.timezone))
        self._clock = clock
        self._paths: queue.Queue = queue.Queue(maxsize=NOTIFICATION_QUEUE)
        self._overflowed = threading.Event()
        self._observer = None
        self._candidates: dict[Path, _Candidate] = {}
        self._finished: set[str] = set()
        self._next_scan = 0.0
        self.counters = {"files_done": 0, "files_quarantined": 0, "notification_overflows": 0}

    def start(self) -> None:
        for folder in (self.root, self.done_dir, self.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._observer = Observer()
        self._observer.schedule(_Notifications(self._paths, self._overflowed), str(self.root), recursive=True)
        self._observer.start()
        log.info("folder_watched", folder=str(self.root), after=self.config.after)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def stats(self) -> dict[str, int]:
        return {"files_pending": len(self._candidates), **self.counters}

    def chunks(self, stop: threading.Event) -> Iterator[AudioChunk | None]:
        while not stop.is_set():
            candidate = self._next_complete()
            if candidate is not None:
                yield from self._analyse(candidate, stop)
                continue
            self._collect(wait=POLL_SECONDS)
            yield None

    # --- noticing files -------------------------------------------------------------------------------------

    def _collect(self, wait: float) -> None:
        """Take in notifications (waiting up to `wait` s for the first) and rescan the folder when due."""
        now = self._clock()
        if now >= self._next_scan or self._overflowed.is_set():
            if self._overflowed.is_set():
                self.counters["notification_overflows"] += 1
                self._overflowed.clear()
            self._next_scan = now + self.config.rescan_seconds
            for path in walk(self.root):
                self._observe(path, complete=False)
            wait = 0.0
        try:
            path, complete = self._paths.get(timeout=wait) if wait > 0 else self._paths.get_nowait()
            self._observe(Path(path), complete)
            while True:
                path, complete = self._paths.get_nowait()
                self._observe(Path(path), complete)
        except queue.Empty:
            pass

    def _observe(self, path: Path, complete: bool) -> None:
        if not self._wanted(path):
            return
        try:
            st = path.stat()
        except OSError:  # gone already (a recorder's temporary file)
            self._candidates.pop(path, None)
            return
        known = self._candidates.get(path)
        if known is None:
            key = recording_key(self._relative(path), st.st_size, st.st_mtime_ns)
            if key in self._finished:
                return
            record = self.state.get(key)
            if record is not None and record.status in FINAL:
                self._complete_after_restart(path, key, record.status, record.error)
                return
            self._candidates[path] = _Candidate(path, st.st_size, st.st_mtime_ns, self._clock(), complete)
        elif (known.size, known.mtime_ns) != (st.st_size, st.st_mtime_ns):
            known.size, known.mtime_ns, known.changed_at, known.closed = st.st_size, st.st_mtime_ns, self._clock(), complete
        elif complete:
            known.closed = True

    def _wanted(self, path: Path) -> bool:
        """Audio files, but none under a hidden folder (a card's .Trash, a sync tool's old versions), none
        that is hidden itself (a copy in progress), none already put away."""
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_relative_to(self.root):
            return False
        if any(part.startswith(".") for part in path.relative_to(self.root).parts):
            return False
        if any(path.is_relative_to(d) for d in (self.done_dir, self.quarantine_dir)):
            return False
        return path.is_file()

    def _next_complete(self) -> _Candidate | None:
        """The complete file with the earliest recording time (then path), if any."""
        now = self._clock()
        complete = []
        for candidate in list(self._candidates.values()):
            self._observe(candidate.path, complete=False)
            if candidate.path not in self._candidates:
                continue
            if candidate.closed or now - candidate.changed_at >= self.config.settle_seconds:
                complete.append(candidate)
        if not complete:
            return None
        return min(complete, key=lambda c: (self._sort_time(c), str(c.path)))

    def _sort_time(self, candidate: _Candidate) -> str:
        if not candidate.sort_known:
            candidate.sort_time = recording_time(candidate.path, self.decode_options.naive_zone)
            candidate.sort_known = True
        return sort_key(candidate.sort_time)

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # --- analysing one file ---------------------------------------------------------------------------------

    def _analyse(self, candidate: _Candidate, stop: threading.Event) -> Iterator[AudioChunk]:
        del self._candidates[candidate.path]
        path, relative = candidate.path, self._relative(candidate.path)
        if not path.exists():
            return
        key = recording_key(relative, candidate.size, candidate.mtime_ns)
        attempts = self.state.begin(key, relative)
        if attempts > self.config.max_attempts:
            self._settle(path, key, "quarantined", 0.0, f"analysis was cut off {attempts - 1} times")
            return
        log.info("recording_started", file=relative, attempt=attempts)
        seconds = 0.0
        try:
            for chunk in decode(path, relative, self.decode_options):
                if stop.is_set():
                    log.info("recording_interrupted", file=relative, after_seconds=round(seconds, 1))
                    self.state.release(key)
                    return
                yield chunk
                seconds += chunk.seconds
        except AudioError as error:  # the readable part, if any, has been analysed
            self._settle(path, key, "quarantined", seconds, str(error))
            return
        except OSError as error:
            log.error("recording_vanished", file=relative, error=str(error))
            return
        except GeneratorExit:  # the loop gave up on it (an output failed): taken up again at the next start
            self.state.release(key)
            raise
        self._settle(path, key, "done", seconds)

    def _settle(self, path: Path, key: str, status: str, seconds: float, error: str | None = None) -> None:
        """Record the outcome first, then move the file: a crash in between is finished by the next run."""
        relative = self._relative(path)
        self.state.finish(key, relative, status, seconds, error)
        self._finished.add(key)
        if status == "quarantined":
            self.counters["files_quarantined"] += 1
            log.error("recording_quarantined", file=relative, error=error)
        else:
            self.counters["files_done"] += 1
            log.info("recording_done", file=relative, audio_seconds=round(seconds, 1))
        self._put_away(path, status, error)

    def _complete_after_restart(self, path: Path, key: str, status: str, error: str | None) -> None:
        self._finished.add(key)
        if status == "quarantined" or self.config.after != "keep":
            log.info("recording_put_away_after_restart", file=self._relative(path), status=status)
            self._put_away(path, status, error)

    def _put_away(self, path: Path, status: str, error: str | None) -> None:
        relative = self._relative(path)
        try:
            if status == "quarantined":
                target = free_name(self.quarantine_dir / relative)
                move(path, target)
                target.with_name(target.name + ".error.txt").write_text(f"{relative}: {error}\n", encoding="utf-8")
            elif self.config.after == "move":
                move(path, free_name(self.done_dir / relative))
            elif self.config.after == "delete":
                path.unlink()
        except OSError as error:  # a full or read-only card: the file stays, and is known to be finished
            log.error("recording_not_put_away", file=relative, status=status, error=str(error))


def walk(root: Path) -> Iterator[Path]:
    """Every file under `root`; folders that vanish or cannot be read during the walk are passed over."""
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            yield Path(folder) / name


def free_name(target: Path) -> Path:
    """`target`, or `name-1.ext`, `name-2.ext`... when a file of that name is already there."""
    n = 0
    candidate = target
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    return candidate


def move(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(target))
