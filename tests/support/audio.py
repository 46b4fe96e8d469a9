"""Recordings converted for a test, from the real ones in tests/data; FLAC of silence, which compresses to almost
nothing, as an attacker's clip that decodes to far more than it weighs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf


def write_resampled(source: Path, target: Path, rate: int) -> Path:
    """A real recording converted to `rate` once, so that every analyser reads identical samples."""
    import soxr

    audio, original = sf.read(str(source), dtype="float32", always_2d=True)
    sf.write(str(target), soxr.resample(audio.mean(axis=1), original, rate), rate, subtype="FLOAT")
    return target


def silence(seconds: float, channels: int = 1, rate: int = 48000) -> bytes:
    """FLAC of silence (16 bits), encoded a second at a time: some 200 bytes a second, whatever it decodes to."""
    buffer = io.BytesIO()
    frames = round(seconds * rate)
    with sf.SoundFile(buffer, "w", rate, channels, "PCM_16", format="FLAC") as f:
        while frames > 0:
            f.write(np.zeros((min(rate, frames), channels), dtype=np.int16))
            frames -= rate
    return buffer.getvalue()


def unknown_length(audio: bytes) -> bytes:
    """FLAC bytes as an encoder that cannot seek back writes them: STREAMINFO's 36 bits of total samples are 0."""
    fields = int.from_bytes(audio[18:26], "big") & ~((1 << 36) - 1)
    return audio[:18] + fields.to_bytes(8, "big") + audio[26:]


CUTS = (0.0, 6.0, 12.0)  # seconds: both cuts fall inside a Red-faced Spinetail song (5.2-7.9 s, 11.3-13.8 s)


def cut_recording(source, folder, names=("20240501_060000.WAV", "20240501_060006.WAV", "20240501_060012.WAV")):
    """The recording cut at CUTS into files named as an AudioMoth names consecutive files."""
    audio, rate = sf.read(source, dtype="float32")
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [round(c * rate) for c in CUTS] + [len(audio)]
    for name, begin, end in zip(names, bounds, bounds[1:], strict=False):
        sf.write(folder / name, audio[begin:end], rate, subtype="PCM_16")
    return audio, rate
