"""An uploaded recording, checked and decoded: what a guide's phone sends to be identified.

Everything about it is untrusted. Its size is checked before anything is parsed; its first bytes must announce
WAV, FLAC, OGG or MP3, so that only those four of libsndfile's parsers ever see an upload; its header must give
a sample rate and a length within the limits before a sample is decoded, and the length is checked again as
it is read (a header may lie). Samples that are not numbers are decoded as silence.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import BinaryIO

import numpy as np
import soundfile as sf

from edge.sources.files import truncation
from edge.sources.salvage import zero_non_finite
from edge.types import AudioChunk, Stream

FORMATS = ("WAV", "FLAC", "OGG", "MP3")
# libsndfile's names of the containers that hold them (WAVEX and RF64 are WAV with another header).
CONTAINERS = {"WAV": "WAV", "WAVEX": "WAV", "RF64": "WAV", "FLAC": "FLAC", "OGG": "OGG", "MP3": "MP3"}
BLOCK_SAMPLES = 1 << 20  # decoded at once at most, all channels: 4 MB of float32 (else a second of audio)
MIN_RATE, MAX_RATE = 8_000, 384_000
UNKNOWN_FRAMES = 2**63 - 1  # libsndfile's SF_COUNT_MAX


class IdentifyError(ValueError):
    """An upload the station cannot identify, in words for the person who sent it; `status` is the HTTP
    status that answers it."""

    def __init__(self, message: str, status: int = HTTPStatus.UNPROCESSABLE_ENTITY):
        super().__init__(message)
        self.status = int(status)


@dataclass(frozen=True)
class UploadLimits:
    """At most `max_bytes` and `max_seconds` (413 beyond); under `min_seconds` is refused (422), anything
    shorter than an analysis window but longer than that is padded with silence."""

    max_bytes: int = 20 * 1024 * 1024
    max_seconds: float = 120.0
    min_seconds: float = 0.5


def check_size(size: int, max_bytes: int) -> None:
    if size == 0:
        raise IdentifyError("the upload is empty (0 bytes): send a WAV, FLAC, OGG or MP3 recording")
    if size > max_bytes:
        raise IdentifyError(
            f"the upload is {size_text(size, '.1f')}; the station takes at most {size_text(max_bytes, 'g')}",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )


def size_text(size: int, spec: str) -> str:
    return f"{size / 2**20:{spec}} MiB" if size >= 2**20 else f"{size / 2**10:{spec}} KiB"


def sniffed(head: bytes) -> str | None:
    """The format family the first bytes announce, before libsndfile parses anything: an upload only ever
    reaches the parsers of the four formats taken."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MP3"  # an ID3 tag, or an MPEG audio frame's sync bits
    return None


def size_of(upload: BinaryIO, limits: UploadLimits) -> int:
    """The upload's size in bytes, checked; the file is left at its start."""
    size = upload.seek(0, io.SEEK_END)
    upload.seek(0)
    check_size(size, limits.max_bytes)
    return size


def decode_upload(upload: BinaryIO, limits: UploadLimits) -> Iterator[AudioChunk]:
    """The upload as mono float32 chunks of one stream, the last one marked; checked for format, rate and
    length from its header before a sample is decoded, and again as it is read (a header may lie)."""
    family = sniffed(upload.read(12))
    upload.seek(0)
    if family is None:
        raise IdentifyError(f"the upload is not audio the station reads (it takes {', '.join(FORMATS)})")
    try:
        f = sf.SoundFile(upload)
    except RuntimeError as error:  # LibsndfileError is one
        raise IdentifyError(f"the upload is not a readable {family} file{decoder_says(error)}") from error
    with f:
        check_header(f, family, limits)
        # A new instance each time: the members' crop caches are keyed by stream.
        stream = Stream(id="upload", sample_rate=f.samplerate, instance=uuid.uuid4().hex)
        limit = int(limits.max_seconds * f.samplerate)
        block = max(1, min(f.samplerate, BLOCK_SAMPLES // f.channels))
        position = 0
        while True:
            try:
                samples = f.read(block, dtype="float32", always_2d=True)
            except RuntimeError as error:
                if declared_frames(f) is None and position > 0:
                    break  # libsndfile fails at the end of a FLAC stream of unknown length (a second may be lost)
                raise IdentifyError(
                    f"the {family} upload is damaged or cut short: it cannot be decoded past "
                    f"{position / f.samplerate:.1f} s{decoder_says(error)}"
                ) from error
            if len(samples) == 0:
                break
            position += len(samples)
            if position > limit:
                raise too_long(limits.max_seconds)
            mono, _ = zero_non_finite(samples.mean(axis=1))
            yield AudioChunk(stream=stream, start=position - len(samples), samples=np.ascontiguousarray(mono))
        check_read(position, f, family, limits)
        yield AudioChunk(stream=stream, start=position, samples=np.zeros(0, np.float32), last=True)


def declared_frames(f: sf.SoundFile) -> int | None:
    """The length the header declares, None when it declares none (a FLAC stream's "unknown": libsndfile
    then says the largest count there is)."""
    return f.frames if 0 <= f.frames < UNKNOWN_FRAMES else None


def check_header(f: sf.SoundFile, family: str, limits: UploadLimits) -> None:
    if CONTAINERS.get(f.format) != family:
        raise IdentifyError(f"the upload is {f.format} audio; the station takes {', '.join(FORMATS)}")
    if not MIN_RATE <= f.samplerate <= MAX_RATE:
        raise IdentifyError(f"a sample rate of {f.samplerate} Hz is not taken ({MIN_RATE} to {MAX_RATE} Hz are)")
    if problem := truncation(f.extra_info):
        raise IdentifyError(f"the upload is {problem}: it was cut short, send the whole recording")
    if (frames := declared_frames(f)) is None:
        return  # checked as it is read
    if frames == 0:
        raise IdentifyError("the upload holds no audio samples")
    if frames / f.samplerate > limits.max_seconds:
        raise too_long(limits.max_seconds, frames / f.samplerate)
    check_long_enough(frames, f.samplerate, limits.min_seconds)


def check_read(frames: int, f: sf.SoundFile, family: str, limits: UploadLimits) -> None:
    """After the last block: the audio was there, as long as the header said and long enough."""
    if frames == 0:
        raise IdentifyError("the upload holds no audio samples")
    declared = declared_frames(f)
    if declared is not None and frames < declared - f.samplerate // 2:  # an MP3's is an estimate: some slack
        raise IdentifyError(
            f"the {family} upload is cut short: {frames / f.samplerate:.1f} s of the "
            f"{declared / f.samplerate:.1f} s its header declares"
        )
    check_long_enough(frames, f.samplerate, limits.min_seconds)


def check_long_enough(frames: int, rate: int, min_seconds: float) -> None:
    if frames / rate < min_seconds:
        raise IdentifyError(
            f"the recording is {frames / rate:.2f} s long; the station needs at least {min_seconds:g} s"
        )


def decoder_says(error: RuntimeError) -> str:
    """libsndfile's reason, when it is one a person can act on (its MP3 decoder's failures say "not a regular
    file", which misleads)."""
    reason = getattr(error, "error_string", "")
    return "" if not reason or "regular file" in reason else f" ({reason.strip().rstrip('.')})"


def too_long(max_seconds: float, seconds: float | None = None) -> IdentifyError:
    length = f"{seconds:.0f} s" if seconds is not None else f"longer than {max_seconds:g} s"
    return IdentifyError(
        f"the recording is {length}; the station identifies at most {max_seconds:g} s: send a shorter clip",
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )
