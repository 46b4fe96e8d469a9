"""What can be read of a damaged recording, and samples that are not numbers kept out of the analysis.

libsndfile loses the whole block being read when decoding fails inside it (a FLAC frame cut short, an MP3
frame of garbage): a 20 s read that meets a cut at 39 s returns nothing after 20 s. So at a failure the block
is read again from its start in reads 64 times smaller, and so on down to RETRY_FRAMES, which stop within
RETRY_FRAMES of the last whole frame before the damage; then reading resumes SKIP_SECONDS further on, and
further, until it works again (the damaged stretch in between becomes silence, so that the clock of what
follows stays exact; MP3 seeks are approximate) or the data ends (a file cut short: seeking past its end
fails).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

RETRY_FRAMES = 64
SKIP_SECONDS = 1.0
MAX_SKIP_SECONDS = 600.0  # undecodable for this long: the rest is taken as lost (and a bogus length bounded)
# A stream that ends without an error this much short of what its header declares was cut off (an MP3's
# declared length comes from its Xing header, or is estimated from its size and bitrate: hence the slack).
SHORT_FRACTION = 0.01
SHORT_FRAMES = 2 * 1152  # two MP3 frames of decoder delay and padding

DECODE_ERRORS = (sf.LibsndfileError, RuntimeError)


def zero_non_finite(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """`samples` with every inf or NaN replaced by 0.0, and how many there were.

    Zeroed rather than dropped, so that the audio clock, and with it the time of everything after, stays
    exact; a window of silence scores nothing (BirdNET: below 0.01 for every class)."""
    bad = ~np.isfinite(samples)
    count = int(np.count_nonzero(bad))
    return (np.where(bad, np.float32(0), samples), count) if count else (samples, 0)


@dataclass
class Salvage:
    """What reading one recording met, in frames of the file: read (gaps included), the stretches filled
    with silence over damage (start, frames), the decoder's last error, and where a failing stream ended."""

    declared: int
    rate: int
    kind: str
    read: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    error: str | None = None
    ended: bool = False

    def problems(self) -> list[str]:
        """The damage in words, for the recording's record and the quarantine note."""

        def s(frames: int) -> str:
            return f"{frames / self.rate:.1f} s"

        found = []
        if self.gaps:
            skipped = sum(frames for _, frames in self.gaps)
            where = ", ".join(s(start) for start, _ in self.gaps[:5])
            found.append(
                f"{self.kind} stream damaged: {s(skipped)} undecodable in {len(self.gaps)} stretch(es) "
                f"from {where} ({self.error}), analysed as silence"
            )
        short = self.declared - self.read > max(SHORT_FRAMES, SHORT_FRACTION * self.declared)
        if self.ended and self.read < self.declared:
            found.append(
                f"{self.kind} stream cut off after {s(self.read)} of {s(self.declared)}: analysed {s(self.read)}"
            )
        elif self.ended:
            found.append(f"{self.kind} stream undecodable after {s(self.read)} ({self.error})")
        elif short:
            found.append(
                f"{self.kind} stream ends after {s(self.read)} of the {s(self.declared)} its header "
                f"declares (cut off): analysed {s(self.read)}"
            )
        return found


def read_blocks(path: Path, f: sf.SoundFile, block: int, salvage: Salvage) -> Iterator[np.ndarray]:
    """`f`'s frames, 2-D float32 blocks of at most `block` frames, reading past damage as the module says
    (a gap comes as a block of zeros); `salvage` says what was met."""
    reader, size, fast_from = f, block, 0
    try:
        while True:
            if size != block and salvage.read >= fast_from:  # past the block that failed: big reads again
                size = block
            try:
                data = reader.read(size, dtype="float32", always_2d=True)
            except DECODE_ERRORS as error:
                salvage.error = str(error)
                again = open_at(path, salvage.read) if size > RETRY_FRAMES else None
                if again is not None:  # the failed block once more, in smaller reads
                    fast_from = salvage.read + size if size == block else fast_from
                    reader, size = replace(reader, f, again), max(RETRY_FRAMES, size // RETRY_FRAMES)
                    continue
                resumed = resume_after(path, salvage)
                if resumed is None:
                    salvage.ended = True
                    return
                again, start = resumed
                reader, size = replace(reader, f, again), block
                salvage.gaps.append((salvage.read, start - salvage.read))
                yield from silence(start - salvage.read, f.channels, block)
                salvage.read = start
                continue
            if len(data) == 0:
                return
            salvage.read += len(data)
            yield data
    finally:
        if reader is not f:
            reader.close()


def open_at(path: Path, frame: int) -> sf.SoundFile | None:
    """The recording opened afresh (a decoder that lost sync stays lost) at `frame`; None when it cannot
    seek there (past the end of what a cut file holds)."""
    try:
        reader = sf.SoundFile(str(path))
    except DECODE_ERRORS:
        return None
    try:
        reader.seek(frame)
    except DECODE_ERRORS:
        reader.close()
        return None
    return reader


def resume_after(path: Path, salvage: Salvage) -> tuple[sf.SoundFile, int] | None:
    """A reader at the first SKIP_SECONDS step past the damage at `salvage.read` that decodes, with its
    position; None when the data ends before one does."""
    step = max(1, round(SKIP_SECONDS * salvage.rate))
    last = min(salvage.declared, salvage.read + round(MAX_SKIP_SECONDS * salvage.rate))
    for start in range(salvage.read + step, last, step):
        reader = open_at(path, start)
        if reader is None:
            return None
        try:
            if len(reader.read(RETRY_FRAMES, dtype="float32")) == 0:
                reader.close()
                return None
            reader.seek(start)
            return reader, start
        except DECODE_ERRORS:
            reader.close()
    return None


def replace(reader: sf.SoundFile, original: sf.SoundFile, new: sf.SoundFile) -> sf.SoundFile:
    """`new` in place of `reader`, which is closed unless it is the caller's own file."""
    if reader is not original:
        reader.close()
    return new


def silence(frames: int, channels: int, block: int) -> Iterator[np.ndarray]:
    while frames > 0:
        n = min(frames, block)
        yield np.zeros((n, channels), np.float32)
        frames -= n
