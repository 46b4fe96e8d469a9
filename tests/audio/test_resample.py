"""The default resampler is BirdNET-Analyzer's (librosa's res_type="kaiser_fast"), streamed in blocks."""

import importlib.resources

import numpy as np
import pytest
import soundfile as sf

from edge.audio.resample import KAISER_FAST, RateConverter, rate_converter


def stream(converter, audio: np.ndarray, block: int) -> np.ndarray:
    parts = [converter.push(audio[start : start + block]) for start in range(0, len(audio), block)]
    return np.concatenate([*parts, converter.push(audio[:0], last=True)])


@pytest.fixture
def recording(data) -> tuple[np.ndarray, int]:
    return sf.read(str(data / "opso_birds_10s.wav"), dtype="float32")


@pytest.mark.parametrize(
    "in_rate, out_rate",
    [(32000, 48000), (22050, 48000), (44100, 48000), (8000, 48000), (256000, 48000), (96000, 48000), (32000, 16000)],
)
def test_equals_librosa_on_the_whole_signal(recording, in_rate, out_rate):
    import librosa

    audio, rate = recording
    if rate != in_rate:  # a real recording brought to the input rate once; what matters is the next step
        audio = librosa.resample(audio, orig_sr=rate, target_sr=in_rate, res_type="soxr_hq")
    expected = librosa.resample(audio, orig_sr=in_rate, target_sr=out_rate, res_type="kaiser_fast")
    got = stream(rate_converter(in_rate, out_rate), audio, 4096)
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_block_size_does_not_change_a_sample(recording):
    audio, rate = recording
    reference = stream(rate_converter(rate, 48000), audio, len(audio))
    for block in (1, 333, 4096, 32000, 100_003):
        assert np.array_equal(stream(rate_converter(rate, 48000), audio, block), reference), block


def test_a_stream_shorter_than_the_filter(recording):
    import librosa

    audio = recording[0][:50]
    expected = librosa.resample(audio, orig_sr=32000, target_sr=48000, res_type="kaiser_fast")
    np.testing.assert_allclose(stream(rate_converter(32000, 48000), audio, 7), expected, rtol=0, atol=1e-6)


def test_the_filter_table_is_resampys():
    with importlib.resources.as_file(importlib.resources.files("resampy") / "data" / "kaiser_fast.npz") as path:
        assert np.array_equal(np.load(KAISER_FAST), np.load(path)["half_window"])


def test_soxr_stays_selectable():
    assert isinstance(rate_converter(32000, 48000, "soxr"), RateConverter)
    with pytest.raises(ValueError, match="kaiser_fast, soxr"):
        rate_converter(32000, 48000, "linear")


def test_a_rate_without_a_short_period_falls_back_to_soxr(recording):
    """A header may claim any rate: 47999 Hz repeats its pattern against 48 kHz only every 48000 outputs, whose
    period kernel would take gigabytes. libsoxr takes it, and the stream is still analysed."""
    audio = recording[0][:47999]
    converter = rate_converter(47999, 48000)
    assert isinstance(converter, RateConverter)
    assert abs(len(stream(converter, audio, 4096)) - 48000) <= 1
