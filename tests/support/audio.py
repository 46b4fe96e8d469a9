"""Recordings converted for a test, from the real ones in tests/data."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf


def write_resampled(source: Path, target: Path, rate: int) -> Path:
    """A real recording converted to `rate` once, so that every analyser reads identical samples."""
    import soxr

    audio, original = sf.read(str(source), dtype="float32", always_2d=True)
    sf.write(str(target), soxr.resample(audio.mean(axis=1), original, rate), rate, subtype="FLOAT")
    return target
