import numpy as np
import pytest

from edge.audio.windower import Windower, WindowSpec
from edge.types import AudioChunk, Stream


def feed(windower: Windower, stream: Stream, audio: np.ndarray, chunk: int):
    windows = []
    for start in range(0, len(audio), chunk):
        windows += windower.push(AudioChunk(stream, start, audio[start : start + chunk]))
    windows += windower.push(AudioChunk(stream, len(audio), np.zeros(0, np.float32), last=True))
    return windows


def test_chunk_size_does_not_change_windows(rng):
    stream = Stream("s", 44100)
    audio = rng.normal(0, 0.1, int(23.7 * 44100)).astype(np.float32)
    spec = WindowSpec(seconds=5.0, hop=2.5)
    reference = feed(Windower(spec, (48000, 32000)), stream, audio, len(audio))
    for chunk in (1024, 2048, 44100):
        windows = feed(Windower(spec, (48000, 32000)), stream, audio, chunk)
        assert [w.index for w in windows] == [w.index for w in reference]
        for a, b in zip(windows, reference, strict=True):
            assert (a.start, a.end, dict(a.offset)) == (b.start, b.end, dict(b.offset))
            for rate in (48000, 32000):
                np.testing.assert_allclose(a.audio[rate], b.audio[rate], atol=1e-5)


def test_windows_at_native_rate_are_the_samples(rng):
    stream = Stream("s", 48000)
    audio = rng.normal(0, 0.1, 12 * 48000).astype(np.float32)
    windows = feed(Windower(WindowSpec(5.0, 2.5), (48000,)), stream, audio, 4096)
    assert [w.start_seconds for w in windows] == [0.0, 2.5, 5.0, 7.5]
    for w in windows[:3]:
        np.testing.assert_array_equal(w.audio[48000], audio[w.start : w.end])
    tail = windows[3].audio[48000]
    np.testing.assert_array_equal(tail[: 4 * 48000 + 24000], audio[7 * 48000 + 24000 :])
    assert not tail[4 * 48000 + 24000 :].any(), "the tail window is zero-padded"


@pytest.mark.parametrize(
    "seconds, expected",
    [(9.0, 3), (10.0, 3), (10.49, 3), (10.5, 4), (3.0, 1), (1.0, 1), (0.1, 1)],
)
def test_birdnet_segmentation(seconds, expected):
    """3 s windows, no overlap, a tail analysed when it holds 1.5 s or more: BirdNET-Analyzer's rule; and a
    recording shorter than that still gets one padded window."""
    stream = Stream("s", 48000)
    audio = np.ones(int(seconds * 48000), np.float32)
    windows = feed(Windower(WindowSpec(3.0, 3.0), (48000,)), stream, audio, 48000)
    assert len(windows) == expected
    assert [w.start for w in windows] == [i * 144000 for i in range(expected)]
    assert all(len(w.audio[48000]) == 144000 for w in windows)


def test_resampled_window_keeps_the_signal(rng):
    """A tone at 22.05 kHz comes out of the 48 kHz window at the same frequency and in phase."""
    stream = Stream("s", 22050)
    t = np.arange(int(10 * 22050)) / 22050
    audio = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    (first, *_rest) = feed(Windower(WindowSpec(3.0, 3.0), (48000,)), stream, audio, 3000)
    expected = np.sin(2 * np.pi * 1000 * np.arange(144000) / 48000)
    np.testing.assert_allclose(first.audio[48000][1000:-1000], expected[1000:-1000], atol=2e-3)


def test_a_new_stream_starts_a_new_grid(rng):
    windower = Windower(WindowSpec(3.0, 3.0), (48000,))
    a = feed(windower, Stream("a", 48000), np.ones(7 * 48000, np.float32), 10000)
    b = feed(windower, Stream("b", 48000), np.ones(4 * 48000, np.float32), 10000)
    assert [(w.stream.id, w.index) for w in a + b] == [("a", 0), ("a", 1), ("b", 0)]


def test_hop_longer_than_window_is_refused():
    with pytest.raises(ValueError, match="gaps"):
        WindowSpec(seconds=3.0, hop=4.0)


def test_a_stream_taken_up_part_way_continues_on_its_grid(rng):
    """A run that resumes a stream at sample 6.3 s (its next file) cuts the windows of the whole stream that
    start there or later, with the same samples."""
    stream = Stream("s", 44100)
    audio = rng.normal(0, 0.1, int(15.5 * 44100)).astype(np.float32)
    spec = WindowSpec(seconds=5.0, hop=2.5)
    whole = feed(Windower(spec, (44100, 32000)), stream, audio, 4096)
    resume = int(6.3 * 44100)
    windower, resumed = Windower(spec, (44100, 32000)), []
    for start in range(resume, len(audio), 4096):
        resumed += windower.push(AudioChunk(stream, start, audio[start : start + 4096]))
    resumed += windower.push(AudioChunk(stream, len(audio), np.zeros(0, np.float32), last=True))
    assert [w.index for w in resumed] == [w.index for w in whole if w.start >= resume] == [3, 4, 5]
    for a, b in zip(resumed, whole[3:], strict=True):
        assert (a.start, a.end, dict(a.offset)) == (b.start, b.end, dict(b.offset))
        np.testing.assert_array_equal(a.audio[44100], b.audio[44100])
        np.testing.assert_allclose(a.audio[32000][2000:], b.audio[32000][2000:], atol=1e-3)  # past the filter's start
