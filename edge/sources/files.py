"""Replay of recordings from disk: a file or a folder, decoded in blocks, one stream per file."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import soundfile as sf
import structlog
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from edge.sources.joins import Joiner, JoinFiles, JoinGap
from edge.sources.recording_time import recording_start
from edge.sources.salvage import Salvage, read_blocks, zero_non_finite
from edge.storage.file_names import shown
from edge.types import AudioChunk, Stream

log = structlog.get_logger(__name__)

# At most this many samples (all channels) are decoded at once: 4 MB of float32, whatever the rate.
MAX_BLOCK_SAMPLES = 1 << 20

# A paced replay hands audio over in blocks this long, as a microphone would.
PACED_BLOCK_SECONDS = 0.5

AUDIO_SUFFIXES = {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".w64", ".rf64"}


def known_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r} (use a name such as 'UTC' or 'Europe/Berlin')") from None
    return zone


ZoneName = Annotated[str, AfterValidator(known_zone)]


class AudioError(Exception):
    """A recording that cannot be decoded, with the reason in words."""


class DamagedAudio(AudioError):
    """A recording whose readable part has been analysed, but which is cut short, fails part-way or holds
    samples that are not numbers; `damaged_seconds` were analysed as silence in their place."""

    def __init__(self, reason: str, damaged_seconds: float = 0.0):
        super().__init__(reason)
        self.damaged_seconds = damaged_seconds


class AccessDenied(AudioError):
    """A recording the box may not read (its permissions): not damaged, readable once they are fixed."""


TimeExpansion = Annotated[
    float,
    Field(
        ge=1,
        le=100,
        description="Time-expansion factor of a bat detector's recordings (10: played ten times slower than "
        "the bats called); 1: real time.",
    ),
]


@dataclass(frozen=True)
class DecodeOptions:
    """`channel`: None mixes all channels down to mono, N picks channel N (0-based). `block_seconds` (and
    MAX_BLOCK_SAMPLES) bound memory: a multi-hour file is read this much at a time. `naive_zone`: the zone of
    the times in file names that carry none. `join_gap`: consecutive files of one recorder whose times meet
    within this many seconds are one stream (see `joins`); None: each file is a stream of its own.
    `time_expansion`: a bat detector's time-expanded recordings play this many times slower than the bats
    called; their stream runs at the file's rate times it, so every time and frequency is the bats' own (as
    BatDetect2 reads them)."""

    channel: int | None = None
    block_seconds: float = 20.0
    naive_zone: tzinfo = UTC
    join_gap: float | None = 0.5
    time_expansion: float = 1.0


def list_recordings(paths: list[Path], naive_zone: tzinfo = UTC) -> list[tuple[Path, str]]:
    """(file, stream id) for every file given and every audio file under every folder given.

    A folder's files are ordered by recording time (see `recording_time`), then by path; their ids are their
    paths inside the folder, as `shown` writes them.
    """
    found = []
    for path in paths:
        if path.is_dir():
            inside = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
            inside.sort(key=lambda p: (sort_key(recording_time(p, naive_zone)), str(p)))
            found += [(p, shown(p.relative_to(path).as_posix())) for p in inside]
        else:
            found.append((path, shown(path.name)))
    return found


def recording_time(path: Path, naive_zone: tzinfo = UTC) -> datetime | None:
    """When a recording started (AudioMoth header, else file name), without decoding it; None if unknown or
    unreadable (a damaged file is named when its turn comes)."""
    comment = None
    try:
        with sf.SoundFile(os.fsencode(path)) as f:  # bytes: soundfile cannot encode a name that is not UTF-8
            comment = f.copy_metadata().get("comment")
    except (sf.LibsndfileError, RuntimeError, OSError):
        pass
    return recording_start(path, comment, naive_zone)


def sort_key(start: datetime | None) -> str:
    return start.isoformat() if start else "~"  # recordings of unknown time sort last


class FileSource:
    """Yields each recording as a stream of chunks at the file's own rate; a bad file is logged and skipped,
    a damaged one is analysed as far as it can be read."""

    def __init__(self, paths: list[Path], options: DecodeOptions = DecodeOptions()):
        self.recordings = list_recordings(paths, options.naive_zone)
        self.options = options
        self.failed: list[tuple[str, str]] = []
        self.damaged: list[tuple[str, str]] = []  # analysed as far as readable, with what was wrong
        self.damaged_seconds = 0.0  # analysed as silence in place of damage

    @classmethod
    def listed(cls, recordings: list[tuple[Path, str]], options: DecodeOptions = DecodeOptions()) -> FileSource:
        """A source of (file, stream id) pairs already listed, in that order (a run of `runs`)."""
        source = cls([], options)
        source.recordings = list(recordings)
        return source

    def chunks(self) -> Iterator[AudioChunk]:
        joiner = Joiner(self.options.join_gap)
        for path, stream_id in self.recordings:
            try:
                yield from decode(path, stream_id, self.options, joiner)
            except DamagedAudio as error:
                self.damaged.append((stream_id, str(error)))
                self.damaged_seconds += error.damaged_seconds
                log.warning(
                    "damaged_audio", file=str(path), error=str(error), damaged_seconds=round(error.damaged_seconds, 2)
                )
            except AudioError as error:
                self.failed.append((stream_id, str(error)))
                log.error("unreadable_audio", file=str(path), error=str(error))
        if (last := joiner.release()) is not None:
            yield last

    def total_seconds(self) -> float:
        """Audio seconds in all recordings that can be opened (for progress reporting)."""
        total = 0.0
        for path, _ in self.recordings:
            if not path.is_file():
                continue  # a named pipe would block sf.info; decode says what it is
            try:
                info = sf.info(os.fsencode(path))
                total += info.frames / (info.samplerate * self.options.time_expansion)
            except (sf.LibsndfileError, RuntimeError, OSError):
                pass
        return total


def decode(
    path: Path, stream_id: str, options: DecodeOptions = DecodeOptions(), joiner: Joiner | None = None
) -> Iterator[AudioChunk]:
    """The recording as one stream of chunks, ending with a chunk marked `last`.

    With a `joiner`, a file that continues the previous one's stream (see `joins`) yields its chunks on that
    stream, and its `last` chunk is held back by the joiner instead; a file that does not yields the held
    `last` chunk of the previous stream first.

    Raises AudioError before the first chunk when nothing can be read, and DamagedAudio after the last one
    when the file is cut short, fails mid-way or holds samples that are not numbers: what could be read has
    been yielded by then (see `salvage`), damaged stretches as silence.
    """
    joiner = joiner or Joiner(None)
    name = shown(path.as_posix())
    with open_audio(path) as f:
        channel = options.channel
        if channel is not None and not 0 <= channel < f.channels:
            raise AudioError(f"has {f.channels} channel(s), channel {channel} asked for")
        st = path.stat()
        own = Stream(
            id=stream_id,
            sample_rate=round(f.samplerate * options.time_expansion),
            started_utc=recording_start(path, f.copy_metadata().get("comment"), options.naive_zone),
            instance=f"{st.st_size}:{st.st_mtime_ns}",
        )
        stream, offset, ended = joiner.begin(name, own, f.channels)
        if ended is not None:
            yield ended
        salvage = Salvage(declared=f.frames, rate=f.samplerate, kind=f.format)
        header = truncation(f.extra_info)
        position = non_finite = 0
        block = max(1, min(int(options.block_seconds * f.samplerate), MAX_BLOCK_SAMPLES // f.channels))
        for data in read_blocks(path, f, block, salvage):
            mono, bad = zero_non_finite(data.mean(axis=1) if channel is None else data[:, channel])
            non_finite += bad
            yield AudioChunk(stream=stream, start=offset + position, samples=np.ascontiguousarray(mono))
            position += len(data)
        problems = ([header] if header else []) + salvage.problems()
        if non_finite:
            problems.append(
                f"{non_finite / f.samplerate:.2f} s of {position / f.samplerate:.1f} s were samples "
                f"that are not numbers (inf or NaN), analysed as silence"
            )
        if position == 0:
            raise AudioError("holds no audio samples" + (f": {'; '.join(problems)}" if problems else ""))
        last = joiner.hold(
            name,
            AudioChunk(stream=stream, start=offset + position, samples=np.zeros(0, np.float32), last=True),
            f.channels,
        )
        if last is not None:
            yield last
    if problems:
        gaps = sum(frames for _, frames in salvage.gaps)
        raise DamagedAudio("; ".join(problems), damaged_seconds=(non_finite + gaps) / f.samplerate)


# libsndfile's header log, e.g. "data : 648526 (should be 216146)": the header promises more than the file holds.
SHORT_CHUNK = re.compile(r"^(\w+)\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)


def truncation(header_log: str) -> str | None:
    """Why a file looks cut short (a recorder that lost power, a copy that stopped), from libsndfile's log."""
    for chunk, declared, present in SHORT_CHUNK.findall(header_log or ""):
        if chunk == "data" and int(declared) > int(present):
            return f"truncated: the header declares {int(declared)} bytes of audio, the file holds {int(present)}"
    return None


def open_audio(path: Path) -> sf.SoundFile:
    """Open a recording for reading, with errors that say what is wrong with it."""
    if not path.exists():
        raise AudioError("does not exist")
    if not path.is_file():  # a named pipe or a device would block the box, or never end
        raise AudioError("is not a regular file")
    if path.stat().st_size == 0:
        raise AudioError("is empty (0 bytes)")
    try:  # libsndfile would only say "System error."; O_NONBLOCK: a named pipe must not stall the box
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except PermissionError:
        raise AccessDenied("permission denied: the box may not read it (check its owner and mode)") from None
    except OSError as error:
        raise AudioError(f"cannot be opened ({error.strerror})") from None
    try:
        f = sf.SoundFile(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"is not a readable audio file ({error})") from error
    if f.frames == 0:
        f.close()
        raise AudioError("holds no audio samples")
    return f


class ReplayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["replay"] = "replay"
    paths: list[Path] = Field(min_length=1, description="Recordings or folders to replay, in recording-time order.")
    speed: float | None = Field(
        None,
        gt=0,
        description="Deliver audio at this multiple of real time (1: as a microphone would); "
        "unset: as fast as it can be analysed.",
    )
    timezone: ZoneName = Field("UTC", description="Zone of recorder clocks whose file names carry none.")
    channel: int | None = Field(None, ge=0, description="Channel to analyse (0-based); default: the mix-down.")
    time_expansion: TimeExpansion = 1.0
    join_files: JoinFiles = True
    join_gap_seconds: JoinGap = 0.5


class ReplaySource:
    """Recordings replayed as a daemon source, optionally paced to `speed` x real time to simulate a live
    stream; the iteration ends after the last recording."""

    def __init__(self, config: ReplayConfig, clock=time.monotonic, sleep=time.sleep):
        options = DecodeOptions(
            channel=config.channel,
            naive_zone=ZoneInfo(config.timezone),
            block_seconds=PACED_BLOCK_SECONDS if config.speed else 20.0,
            join_gap=config.join_gap_seconds if config.join_files else None,
            time_expansion=config.time_expansion,
        )
        self.files = FileSource(config.paths, options)
        self.speed = config.speed
        self._clock, self._sleep = clock, sleep

    @property
    def live(self) -> bool:
        """Paced audio cannot wait, as a microphone's cannot."""
        return self.speed is not None

    def start(self) -> None:
        if not self.files.recordings:
            raise AudioError("no recordings to replay")

    def chunks(self, stop: threading.Event) -> Generator[AudioChunk | None, None, None]:
        began, sent = self._clock(), 0.0
        for chunk in self.files.chunks():
            if stop.is_set():
                return
            if self.speed:
                sent += chunk.seconds
                due = began + sent / self.speed
                self._pace(due, stop)
                chunk = replace(chunk, received=due)  # a microphone would have delivered it then
            yield chunk

    def _pace(self, due: float, stop: threading.Event) -> None:
        """Sleep until `due` (on the clock), in short naps that watch `stop` (waiting on the Event itself
        could deadlock with a signal handler that sets it)."""
        while not stop.is_set():
            ahead = due - self._clock()
            if ahead <= 0:
                return
            self._sleep(min(ahead, 0.1))

    def stats(self) -> dict[str, int | float]:
        return {
            "files_failed": len(self.files.failed),
            "files_damaged": len(self.files.damaged),
            "damaged_seconds": round(self.files.damaged_seconds, 2),
        }

    def stop(self) -> None:
        pass
