"""A clip's spectrogram (edge.station.spectrogram): a tone is a bright row at its frequency's height, from 0 Hz
at the bottom to the Nyquist frequency at the top; drawn once, then read from the cache beside the clip. A file
that would decode to more than a clip holds is refused from its header, a long one is drawn in bounded memory,
and one drawing is made at a time."""

from __future__ import annotations

import io
import threading
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from edge.station import spectrogram
from support.audio import silence, unknown_length

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
    first = spectrogram.cached(clip, threading.Lock())
    cache = spectrogram.cache_path(clip)
    assert cache.parent == clip.parent and cache.read_bytes() == first
    cache.write_bytes(b"the cached image")  # what the cache holds is served: nothing is drawn again
    assert spectrogram.cached(clip, threading.Lock()) == b"the cached image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tone.flac", cache.name], "no temporary file left"


def test_a_cache_that_cannot_be_written_costs_only_time(tmp_path):
    clip = tone_clip(tmp_path / "tone.flac", 3000, 16000)
    spectrogram.cache_path(clip).mkdir()  # a name taken by a folder: the image cannot be renamed onto it
    assert spectrogram.cached(clip, threading.Lock()).startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def peak_bytes(work) -> int:
    """The most memory Python and numpy held at once while `work()` ran."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def declaring(audio: bytes, total_samples: int) -> bytes:
    """The FLAC with its STREAMINFO saying `total_samples` a channel (36 bits), whatever its frames hold."""
    fields = int.from_bytes(audio[18:26], "big") & ~((1 << 36) - 1) | total_samples
    return audio[:18] + fields.to_bytes(8, "big") + audio[26:]


def refused(clip) -> str:
    with pytest.raises(spectrogram.Undrawable) as refusal:
        spectrogram.png(clip)
    return str(refusal.value)


@pytest.mark.parametrize(
    ("audio", "reason"),
    [
        (lambda: silence(5.0, channels=8), "the clip has 8 channels; a clip has at most 2"),
        (lambda: unknown_length(silence(5.0)), "does not declare its length"),
        (lambda: declaring(silence(5.0), 10 * 3600 * 48000), "lasts 36000 s at 48000 Hz: longer than the station"),
        (lambda: silence(601.0), "lasts 601 s at 48000 Hz"),
        (lambda: silence(400.0, rate=192000), "lasts 400 s at 192000 Hz"),  # under ten minutes, too many samples
    ],
)
def test_a_file_decoding_to_more_than_a_clip_is_refused_from_its_header(tmp_path, audio, reason):
    """A file in the clip folder that the arrival check never saw (kept before it, replaced on disk)."""
    clip = tmp_path / "bomb.flac"
    clip.write_bytes(audio())
    reasons = []
    assert peak_bytes(lambda: reasons.append(refused(clip))) < 1_000_000, "refused before decoding"
    assert reason in reasons[0]


def test_a_long_clip_is_drawn_in_bounded_memory(tmp_path):
    """Ten minutes of stereo at 48 kHz: 230 MB as float32 at once; read in blocks, only the windows drawn kept."""
    clip = tmp_path / "long.flac"
    clip.write_bytes(silence(590.0, channels=2))
    images = []
    assert peak_bytes(lambda: images.append(spectrogram.png(clip))) < 60_000_000
    assert Image.open(io.BytesIO(images[0])).size == (spectrogram.WIDTH, spectrogram.HEIGHT)


def test_a_refusal_is_cached_and_goes_with_the_clip(tmp_path):
    """Answered from the cache after: not decoded again on every request (the file is not even read)."""
    clip = tmp_path / "bomb.flac"
    clip.write_bytes(silence(5.0, channels=8))
    garbled = tmp_path / "garbled.flac"
    garbled.write_bytes(silence(5.0)[:200] + bytes(5000))  # a sound header, then no frame that decodes
    for path, reason in ((clip, "8 channels"), (garbled, "cannot be decoded")):
        with pytest.raises(spectrogram.Undrawable, match=reason):
            spectrogram.cached(path, threading.Lock())
        assert reason in spectrogram.refusal_path(path).read_text()
        path.write_bytes(b"")  # a file that would raise another error, were it read
        with pytest.raises(spectrogram.Undrawable, match=reason):
            spectrogram.cached(path, threading.Lock())
        spectrogram.forget(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.flac", "garbled.flac"]
    image = Image.open(io.BytesIO(spectrogram.placeholder("the clip has 8 channels; a clip has at most 2")))
    assert image.size == (spectrogram.WIDTH, spectrogram.HEIGHT)


class Turnstile:
    """A lock that tells when a drawing waits at it."""

    def __init__(self):
        self.lock, self.waiting = threading.Lock(), threading.Event()

    def __enter__(self):
        self.waiting.set()
        self.lock.acquire()

    def __exit__(self, *exc):
        self.lock.release()


def test_one_drawing_at_a_time_and_who_waited_takes_what_was_drawn_meanwhile(tmp_path):
    clip = tone_clip(tmp_path / "tone.flac", 3000, 16000)
    turnstile, got = Turnstile(), []
    with turnstile.lock:  # another request is drawing
        waiting = threading.Thread(target=lambda: got.append(spectrogram.cached(clip, turnstile)))
        waiting.start()
        assert turnstile.waiting.wait(60)
        spectrogram.cache_path(clip).write_bytes(b"drawn by the other request")
    waiting.join(60)
    assert got == [b"drawn by the other request"]
