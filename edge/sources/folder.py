"""The folder a recorder writes to: files analysed once each, in recording-time order, as they become complete.

A file is complete when no process has it open for writing (see `writers`) and it was moved in, or nothing
has written to it for `settle_seconds`: no write or close notification (inotify), no change of size or
modification time, the wait starting again at each. A close alone is not the end: a recorder may reopen the
file to append. What was done with each file is kept in `RecordingState`, so a restart neither repeats nor
skips one; a damaged file is moved to the quarantine folder with a note of its error (see `shelves`). A file
is never moved while a process has it open for writing or while it changes. A recorder's consecutive files are
one stream (see `joins`); the stream's end waits while its next file is being written. What is known of each
file noticed, and the notifications, are in `arrivals`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel, ConfigDict, Field
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from edge.sources.arrivals import Candidate, Notifications, walk
from edge.sources.files import (
    AUDIO_SUFFIXES,
    AccessDenied,
    AudioError,
    DamagedAudio,
    DecodeOptions,
    TimeExpansion,
    ZoneName,
    decode,
    recording_time,
    sort_key,
)
from edge.sources.joins import Joiner, JoinFiles, JoinGap, StreamEnd
from edge.sources.shelves import Shelves
from edge.sources.state import FINAL, RecordingState, recording_key
from edge.sources.writers import open_for_writing
from edge.storage.file_names import shown
from edge.types import AudioChunk, Stream

log = structlog.get_logger(__name__)

POLL_SECONDS = 1.0
NOTIFICATION_QUEUE = 10_000


class FolderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["folder"] = "folder"
    path: Path = Field(description="Folder the recorder writes to; sub-folders are watched too.")
    after: Literal["move", "delete", "keep"] = Field(
        "move", description="What to do with a file once analysed: move it to `done_dir`, delete it, or leave it."
    )
    done_dir: Path | None = Field(None, description="Where analysed files go (default: <data_dir>/done).")
    quarantine_dir: Path | None = Field(
        None, description="Where damaged files go, each with a .error.txt (default: <data_dir>/quarantine)."
    )
    settle_seconds: float = Field(
        10.0,
        gt=0,
        description="A file no process has open for writing is complete once nothing has written to "
        "it for this long, seconds.",
    )
    rescan_seconds: float = Field(
        60.0, gt=0, description="Full rescan of the folder, seconds: a safety net for lost notifications."
    )
    timezone: ZoneName = Field("UTC", description="Zone of recorder clocks whose file names carry none.")
    channel: int | None = Field(None, ge=0, description="Channel to analyse (0-based); default: the mix-down.")
    time_expansion: TimeExpansion = 1.0
    max_attempts: int = Field(
        3, ge=1, description="A file whose analysis was cut off (crash, power loss) this often is quarantined."
    )
    join_files: JoinFiles = True
    join_gap_seconds: JoinGap = 0.5


class FolderSource:
    live = False  # a recorder's files wait on the card until analysed

    def __init__(
        self, config: FolderConfig, state: RecordingState, done_dir: Path, quarantine_dir: Path, clock=time.monotonic
    ):
        self.config = config
        self.root = config.path.resolve()
        self.state = state
        self.done_dir = done_dir.resolve()
        self.quarantine_dir = quarantine_dir.resolve()
        self.shelves = Shelves(self.root, self.done_dir, self.quarantine_dir, config.after)
        self.decode_options = DecodeOptions(
            channel=config.channel, naive_zone=ZoneInfo(config.timezone), time_expansion=config.time_expansion
        )
        self.joiner = Joiner(
            config.join_gap_seconds if config.join_files else None,
            resumed=lambda recorder: StreamEnd.from_row(state.stream_end(recorder)),
            released=lambda end: state.forget_stream_end(end.recorder),
        )
        self._held_since = 0.0  # when the stream the joiner holds ran out of audio
        # Files read to the end whose stream's last windows wait for the next file: each is finished (state,
        # put away) once those windows are analysed, so that a crash before then analyses it again.
        self._unfinished: list[tuple[Candidate, str, str, float, str | None, tuple]] = []  # _conclude's arguments
        self._clock = clock
        self._paths: queue.Queue = queue.Queue(maxsize=NOTIFICATION_QUEUE)
        self._overflowed = threading.Event()
        self._observer: BaseObserver | None = None
        self._candidates: dict[Path, Candidate] = {}
        self._finished: set[str] = set()
        self._next_scan = 0.0
        self._hidden_writers_told = False
        self.counters = {"files_done": 0, "files_quarantined": 0, "notification_overflows": 0, "damaged_seconds": 0.0}

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in (self.done_dir, self.quarantine_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:  # a full or read-only card: analysed files then stay where they are
                log.error("folder_not_made", folder=str(folder), error=str(error))
        self._observer = observer = Observer()
        observer.schedule(Notifications(self._paths, self._overflowed), str(self.root), recursive=True)
        observer.start()
        log.info("folder_watched", folder=str(self.root), after=self.config.after)

    def stop(self) -> None:
        for _, key, *_ in self._unfinished:  # analysed again at the next start, not counted as cut off
            self.state.release(key)
        self._unfinished = []
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def stats(self) -> dict[str, int | float]:
        held_open = sum(candidate.held_open for candidate in self._candidates.values())
        return {
            "files_pending": len(self._candidates),
            "files_held_open": held_open,
            **self.counters,
            "damaged_seconds": round(self.counters["damaged_seconds"], 2),
        }

    def chunks(self, stop: threading.Event) -> Generator[AudioChunk | None, None, None]:
        while not stop.is_set():
            candidate = self._next_complete()
            if candidate is not None:
                yield from self._analyse(candidate, stop)
                continue
            if not self._continuation_due() and (last := self.joiner.release()) is not None:
                yield last
                self._conclude_unfinished()  # the stream's last windows are analysed now
                continue
            self._collect(wait=POLL_SECONDS)
            yield None

    def _continuation_due(self) -> bool:
        """Whether the stream held open may still be continued: a file of its recorder that begins where it
        ended is being written (it changed within the settle time), or the stream ran out less than the settle
        time ago. Any complete file of another stream ends the wait at once (see `chunks`)."""
        held, now = self.joiner.held, self._clock()
        if held is None:
            return False
        if now - self._held_since < self.config.settle_seconds:
            return True
        for candidate in self._candidates.values():
            self._sort_time(candidate)
            own = Stream("", held.stream.sample_rate, candidate.sort_time)
            if now - candidate.changed_at < self.config.settle_seconds and held.continued_by(
                candidate.recorder, own, held.channels, self.joiner.gap
            ):
                return True
        return False

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
                self._observe(path)
            wait = 0.0
        try:
            path, how = self._paths.get(timeout=wait) if wait > 0 else self._paths.get_nowait()
            self._observe(Path(path), how)
            while True:
                path, how = self._paths.get_nowait()
                self._observe(Path(path), how)
        except queue.Empty:
            pass

    def _observe(self, path: Path, how: str | None = None) -> None:
        """Note a file seen by a scan (`how` None) or a notification ("written", "moved")."""
        if not self._wanted(path):
            return
        try:
            st = path.stat()
        except OSError:  # gone already (a recorder's temporary file)
            self._candidates.pop(path, None)
            return
        known = self._candidates.get(path)
        if known is None:
            key = recording_key(self._name(path), st.st_size, st.st_mtime_ns)
            if key in self._finished:
                return
            record = self.state.get(key)
            if record is not None and record.status in FINAL:
                self._complete_after_restart(Candidate.seen(path, st, self._clock()), key, record.status, record.error)
                return
            # A file an earlier run had taken, unchanged since (same key), was complete then: taken again at once.
            taken_before = record is not None
            self._candidates[path] = Candidate.seen(path, st, self._clock(), moved_in=how == "moved" or taken_before)
        elif how is not None or (known.size, known.mtime_ns, known.file_id) != (
            st.st_size,
            st.st_mtime_ns,
            (st.st_dev, st.st_ino),
        ):
            self._candidates[path] = Candidate.seen(path, st, self._clock(), moved_in=how == "moved")

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

    def _next_complete(self) -> Candidate | None:
        """The complete file with the earliest recording time (then path), if any."""
        now = self._clock()
        settled = []
        for path in list(self._candidates):
            self._observe(path)
            candidate = self._candidates.get(path)
            if candidate and (candidate.moved_in or now - candidate.changed_at >= self.config.settle_seconds):
                settled.append(candidate)
        complete = self._not_open_for_writing(settled)
        if not complete:
            return None
        return min(complete, key=lambda c: (self._sort_time(c), str(c.path)))

    def _not_open_for_writing(self, candidates: list[Candidate]) -> list[Candidate]:
        """Those of `candidates` that no process has open for writing (all of them when /proc says nothing)."""
        if not candidates:
            return []
        open_files = open_for_writing()
        if (open_files is None or open_files.hidden) and not self._hidden_writers_told:
            self._hidden_writers_told = True
            log.info(
                "writers_partly_hidden",
                processes=open_files.hidden if open_files else "all",
                note="only the settle time protects files these processes write",
            )
        if open_files is None:
            return candidates
        free = []
        for candidate in candidates:
            if candidate.file_id not in open_files.writing:
                free.append(candidate)
            elif not candidate.held_open:
                candidate.held_open = True
                log.info("recording_still_open", file=self._name(candidate.path))
        return free

    def _sort_time(self, candidate: Candidate) -> str:
        if not candidate.sort_known:
            candidate.sort_time = recording_time(candidate.path, self.decode_options.naive_zone)
            candidate.sort_known = True
        return sort_key(candidate.sort_time)

    def _name(self, path: Path) -> str:
        """The file's path inside the folder as text (see `shown`): its name in the state, logs and records."""
        return shown(path.relative_to(self.root).as_posix())

    # --- analysing one file ---------------------------------------------------------------------------------

    def _analyse(self, candidate: Candidate, stop: threading.Event) -> Iterator[AudioChunk]:
        del self._candidates[candidate.path]
        path, name = candidate.path, self._name(candidate.path)
        if not path.exists():
            return
        key = recording_key(name, candidate.size, candidate.mtime_ns)
        attempts = self.state.begin(key, name)
        if attempts > self.config.max_attempts:
            self._settle(candidate, key, "quarantined", 0.0, f"analysis was cut off {attempts - 1} times")
            return
        log.info("recording_started", file=name, attempt=attempts)
        seconds, before = 0.0, self.joiner.held
        try:
            for chunk in decode(path, name, self.decode_options, self.joiner):
                if stop.is_set():
                    log.info("recording_interrupted", file=name, after_seconds=round(seconds, 1))
                    self.state.release(key)
                    return
                yield chunk
                seconds += chunk.seconds
                if chunk.last:  # the previous stream ended here, its last windows analysed
                    self._conclude_unfinished()
        except AccessDenied as error:  # not damaged: left in place, tried again at each rescan until readable
            log.error("recording_unreadable", file=name, error=str(error), retry_seconds=self.config.rescan_seconds)
            self.state.release(key)
            return
        except AudioError as error:  # the readable part, if any, has been analysed
            if isinstance(error, DamagedAudio):
                self.counters["damaged_seconds"] += error.damaged_seconds
            self._settle(candidate, key, "quarantined", seconds, str(error), self._holds_tail(before))
            return
        except OSError as error:
            log.error("recording_vanished", file=name, error=str(error))
            return
        except GeneratorExit:  # the loop gave up on it (an output failed): taken up again at the next start
            self.state.release(key)
            raise
        self._settle(candidate, key, "done", seconds, tail_held=self._holds_tail(before))

    def _holds_tail(self, before) -> bool:
        """Whether the joiner now holds the end of the stream the file just read belongs to (`before`: what it
        held when the file was taken)."""
        return self.joiner.held is not None and self.joiner.held is not before

    def _settle(
        self,
        candidate: Candidate,
        key: str,
        status: str,
        seconds: float,
        error: str | None = None,
        tail_held: bool = False,
    ):
        """A file read to its end. When the joiner holds its stream's end (`tail_held`), the windows across that
        end wait for the next file: the file is finished once they are analysed (the next file continues the
        stream and is itself read, or the stream ends), and a crash before then analyses it again, its events
        under the same ids (the outbox publishes none twice). Otherwise it is finished now."""
        self._held_since = self._clock()
        if not tail_held:
            self._conclude(candidate, key, status, seconds, error, None)
            return
        self._conclude_unfinished(released=False)  # continued by this file: their last windows are analysed
        held = self.joiner.held
        assert held is not None  # tail_held: the joiner holds this file's stream
        self._unfinished.append((candidate, key, status, seconds, error, held.as_row()))
        log.info(
            "recording_read",
            file=self._name(candidate.path),
            audio_seconds=round(seconds, 1),
            note="finished once its stream's last windows are analysed",
        )
        self._finished.add(key)  # not taken again by a scan while it waits

    def _conclude_unfinished(self, released: bool = True) -> None:
        """Finish the files waiting on their stream's end; each keeps where the stream stood after it, unless
        the stream has ended (`released`)."""
        unfinished, self._unfinished = self._unfinished, []
        for candidate, key, status, seconds, error, stream_end in unfinished:
            self._conclude(candidate, key, status, seconds, error, None if released else stream_end)

    def _conclude(
        self, candidate: Candidate, key: str, status: str, seconds: float, error: str | None, stream_end: tuple | None
    ) -> None:
        """Record the outcome first, then move the file: a crash in between is finished by the next run."""
        name = self._name(candidate.path)
        self.state.finish(key, name, status, seconds, error, stream_end)
        if status == "quarantined":
            self.counters["files_quarantined"] += 1
            log.error("recording_quarantined", file=name, error=error)
        else:
            self.counters["files_done"] += 1
            log.info("recording_done", file=name, audio_seconds=round(seconds, 1))
        self._finish(candidate, key, status, error)

    def _complete_after_restart(self, candidate: Candidate, key: str, status: str, error: str | None) -> None:
        if self._finish(candidate, key, status, error) and (status == "quarantined" or self.config.after != "keep"):
            log.info("recording_put_away_after_restart", file=self._name(candidate.path), status=status)

    def _finish(self, candidate: Candidate, key: str, status: str, error: str | None) -> bool:
        """Put the file away, unless it has changed since it was taken or a process has it open for writing:
        then it stays, and is looked at again as any other file (a new version is a new recording)."""
        if status == "quarantined" or self.config.after != "keep":
            if self._changed_or_open(candidate):
                log.warning(
                    "recording_left_in_place",
                    file=self._name(candidate.path),
                    status=status,
                    reason="written to since it was taken",
                )
                return False
            self.shelves.put_away(candidate.path, status, error)
        self._finished.add(key)
        return True

    def _changed_or_open(self, candidate: Candidate) -> bool:
        try:
            st = candidate.path.stat()
        except OSError:
            return False  # gone: nothing to move
        if (st.st_size, st.st_mtime_ns, (st.st_dev, st.st_ino)) != (
            candidate.size,
            candidate.mtime_ns,
            candidate.file_id,
        ):
            return True
        return not self._not_open_for_writing([candidate])
