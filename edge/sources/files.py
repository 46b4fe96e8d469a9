"""Replay of recordings from disk: a file or a folder, decoded in blocks, one stream per file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone, tzinfo
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import structlog

from edge.recording_time import recording_start
from edge.types import AudioChunk, Stream

log = structlog.get_logger(__name__)

# At most this many samples (all channels) are decoded at once: 4 MB of float32, whatever the rate.
MAX_BLOCK_SAMPLES = 1 << 20

AUDIO_SUFFIXES = {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".w64", ".rf64"}


class AudioError(Exception):
    """A recording that cannot be decoded, with the reason in words."""


@dataclass(frozen=True)
class DecodeOptions:
    """`channel`: None mixes all channels down to mono, N picks channel N (0-based). `block_seconds` (and
    MAX_BLOCK_SAMPLES) bound memory: a multi-hour file is read this much at a time. `naive_zone`: the zone of
    the times in file names that carry none."""

    channel: int | None = None
    block_seconds: float = 20.0
    naive_zone: tzinfo = timezone.utc


def list_recordings(paths: list[Path]) -> list[tuple[Path, str]]:
    """(file, stream id) for every file given and every audio file under every folder given.

    A folder's files are ordered by recording time (from their names), then by path; their ids are their
    paths inside the folder.
    """
    found = []
    for path in paths:
        if path.is_dir():
            inside = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
            inside.sort(key=lambda p: (_sort_time(p), str(p)))
            found += [(p, p.relative_to(path).as_posix()) for p in inside]
        else:
            found.append((path, path.name))
    return found


def _sort_time(path: Path) -> str:
    start = recording_start(path, None)
    return start.isoformat() if start else "~"  # files with no time in their name sort last


class FileSource:
    """Yields each recording as a stream of chunks at the file's own rate; a bad file is logged and skipped."""

    def __init__(self, paths: list[Path], options: DecodeOptions = DecodeOptions()):
        self.recordings = list_recordings(paths)
        self.options = options
        self.failed: list[tuple[str, str]] = []

    def chunks(self) -> Iterator[AudioChunk]:
        for path, stream_id in self.recordings:
            try:
                yield from self._decode(path, stream_id)
            except AudioError as error:
                self.failed.append((stream_id, str(error)))
                log.error("unreadable_audio", file=str(path), error=str(error))

    def total_seconds(self) -> float:
        """Audio seconds in all recordings that can be opened (for progress reporting)."""
        total = 0.0
        for path, _ in self.recordings:
            try:
                info = sf.info(str(path))
                total += info.frames / info.samplerate
            except (sf.LibsndfileError, RuntimeError, OSError):
                pass
        return total

    def _decode(self, path: Path, stream_id: str) -> Iterator[AudioChunk]:
        f = open_audio(path)
        with f:
            channel = self.options.channel
            if channel is not None and not 0 <= channel < f.channels:
                raise AudioError(f"has {f.channels} channel(s), channel {channel} asked for")
            stream = Stream(
                id=stream_id,
                sample_rate=f.samplerate,
                started_utc=recording_start(path, f.copy_metadata().get("comment"), self.options.naive_zone),
            )
            position = 0
            block = max(1, min(int(self.options.block_seconds * f.samplerate), MAX_BLOCK_SAMPLES // f.channels))
            while True:
                try:
                    data = f.read(block, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as error:
                    log.error("audio_read_failed", file=str(path), after_seconds=position / f.samplerate,
                              error=str(error))
                    break
                if len(data) == 0:
                    break
                mono = data.mean(axis=1) if channel is None else data[:, channel]
                yield AudioChunk(stream=stream, start=position, samples=np.ascontiguousarray(mono))
                position += len(data)
            if position == 0:
                raise AudioError("holds no audio samples")
            yield AudioChunk(stream=stream, start=position, samples=np.zeros(0, np.float32), last=True)


def open_audio(path: Path) -> sf.SoundFile:
    """Open a recording for reading, with errors that say what is wrong with it."""
    if not path.exists():
        raise AudioError("does not exist")
    if path.stat().st_size == 0:
        raise AudioError("is empty (0 bytes)")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"is not a readable audio file ({error})") from error
    if f.frames == 0:
        f.close()
        raise AudioError("holds no audio samples")
    return f
