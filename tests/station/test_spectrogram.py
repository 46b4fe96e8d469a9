"""A clip's spectrogram (edge.station.spectrogram): a tone is a bright row at its frequency's height, from 0 Hz
at the bottom to the Nyquist frequency at the top; drawn once, then read from the cache beside the clip."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from edge.station import spectrogram

SCALE_PX = 60  # the kHz labels on the left are white: left out of the measurement


def tone_clip(path, hz: float, rate: int, seconds: float = 3.0, noise: float = 0.01):
    t = np.arange(int(rate * seconds)) / rate
    samples = 0.5 * np.sin(2 * np.pi * hz * t) + np.random.default_rng(0).normal(0, noise, len(t))
    sf.write(path, samples, rate, format="FLAC")
    return path


def brightest_row(png: bytes) -> int:
    image = Image.open(io.BytesIO(png))
    assert image.size == (spectrogram.WIDTH, spectrogram.HEIGHT) and image.mode == "RGB"
    luminance = np.asarray(image.convert("L"), dtype=float)[:, SCALE_PX:]
    return int(np.argmax(luminance.mean(axis=1)))


@pytest.mark.parametrize(("hz", "rate"), [(3000, 16000), (3000, 48000), (10000, 32000)])
def test_a_tone_is_a_bright_row_at_its_height(tmp_path, hz, rate):
    clip = tone_clip(tmp_path / "tone.flac", hz, rate)
    expected = spectrogram.HEIGHT * (1 - hz / (rate / 2))
    assert brightest_row(spectrogram.png(clip)) == pytest.approx(expected, abs=2)


def test_quiet_is_dark_and_loud_is_bright():
    """The colour map runs from dark (quiet) to bright (loud), never darker from one step to the next."""
    luminance = spectrogram.COLOURS @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(luminance) >= 0) and luminance[0] < 40 < 200 < luminance[-1]


def test_a_clip_shorter_than_one_window_and_a_silent_one_are_drawn(tmp_path):
    short = tmp_path / "short.flac"
    sf.write(short, np.full(100, 0.1), 16000, format="FLAC")
    silent = tmp_path / "silent.flac"
    sf.write(silent, np.zeros(16000), 16000, format="FLAC")
    for clip in (short, silent):
        assert Image.open(io.BytesIO(spectrogram.png(clip))).size == (spectrogram.WIDTH, spectrogram.HEIGHT)


def test_drawn_once_and_cached_beside_the_clip(tmp_path):
    clip = tone_clip(tmp_path / "tone.flac", 3000, 16000)
    first = spectrogram.cached(clip)
    cache = spectrogram.cache_path(clip)
    assert cache.parent == clip.parent and cache.read_bytes() == first
    cache.write_bytes(b"the cached image")  # what the cache holds is served: nothing is drawn again
    assert spectrogram.cached(clip) == b"the cached image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tone.flac", cache.name], "no temporary file left"


def test_a_cache_that_cannot_be_written_costs_only_time(tmp_path):
    clip = tone_clip(tmp_path / "tone.flac", 3000, 16000)
    spectrogram.cache_path(clip).mkdir()  # a name taken by a folder: the image cannot be renamed onto it
    assert spectrogram.cached(clip).startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
