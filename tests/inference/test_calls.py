"""edge.inference.calls: the call detectors' front-end and decoding on synthetic arrays, and chunking with the
bundled BatDetect2 model on a real recording."""

import numpy as np
import pytest
import soundfile as sf
import soxr

from edge.app.model_folders import model_folders
from edge.inference.calls import CallDetector, decode, first_order_smoothing, peaks, read_call_spec
from edge.inference.manifest import ModelError, discover, find, load_manifest
from support.paths import DATA


@pytest.fixture
def detector(models_dir) -> CallDetector:
    return CallDetector(load_manifest(models_dir / "batdetect2-uk"))


def test_smoothing_is_the_recursive_filter():
    x = np.random.default_rng(0).exponential(1e6, size=(3, 1000))
    b = 0.0488
    expected, state = np.empty_like(x), np.ones(3)
    for t in range(x.shape[1]):
        state = (1 - b) * state + b * x[:, t]
        expected[:, t] = state
    np.testing.assert_allclose(first_order_smoothing(x, b), expected, rtol=1e-12)


def test_padding_is_batdetect2s(detector):
    spec = detector.spec
    assert spec.padded_length(128000) == 131456  # 0.5 s: resized width 498 -> 512
    assert spec.padded_length(131456) == 131456
    assert spec.padded_length(131456 + 100) == 131456 + 100  # width still 512: trailing samples are kept
    assert spec.padded_length(1000) == 64 * 128 + 384  # the shortest input: width 32
    assert spec.padded_length(768000) == 6016 * 128 + 384  # a 3 s chunk: width 2998 -> 3008
    assert spec.bins == slice(21, 241)


def test_peaks_are_local_maxima_of_a_9_by_9_square():
    heat = np.zeros((20, 30), np.float32)
    heat[0, 0], heat[3, 3], heat[10, 10], heat[10, 14], heat[10, 25] = 0.9, 0.5, 0.8, 0.7, 0.6
    found = np.argwhere(peaks(heat, 9) > 0).tolist()
    # (3, 3) is within 4 pixels of (0, 0); (10, 14) of (10, 10); the zeros tie with their neighbours but
    # score nothing.
    assert found == [[0, 0], [10, 10], [10, 25]]


def test_decode_reads_the_box_and_classes_at_each_peak(detector):
    spec = detector.spec
    heat = np.zeros((1, 128, 512), np.float32)
    size = np.zeros((2, 128, 512), np.float32)
    classes = np.zeros((17, 128, 512), np.float32)
    heat[0, 100, 40], size[:, 100, 40], classes[3, 100, 40] = 0.6, (4.0, 10.0), 0.6
    heat[0, 50, 200], classes[5, 50, 200] = 0.2, 0.2
    (call,) = decode(heat, size, classes, spec)  # the second is under the manifest's 0.3
    assert call.start == pytest.approx((2 * 40 * 128 + 384) / 256000)
    assert call.end == pytest.approx((2 * 44 * 128 + 384) / 256000)
    assert call.low_freq == pytest.approx(28 * 110000 / 128 + 10000)
    assert call.high_freq == pytest.approx(call.low_freq + 10 * 110000 / 128)
    assert call.score == pytest.approx(0.6) and call.best() == 3
    assert [c.start for c in decode(heat, size, classes, spec, threshold=0.1)] == sorted(
        c.start for c in decode(heat, size, classes, spec, threshold=0.1)
    )
    assert spec.top_k(512) == 51  # 0.5 s: BatDetect2's count of 200 a second, over half the duration


def test_a_recording_is_run_in_chunks_of_three_seconds(detector, data):
    audio, rate = sf.read(str(data / "bats" / "20180627_215323-RHIFER-LR_0_0.5.wav"), dtype="float32")
    audio = soxr.resample(audio, rate, 256000).astype(np.float32)
    alone = detector.calls(audio)
    assert len(alone) >= 5
    later = detector.calls_in_chunks(np.concatenate([np.zeros(3 * 256000, np.float32), audio]))
    shifted = [c for c in later if c.start >= 3.0]
    assert [round(c.start - 3.0, 6) for c in shifted] == [round(c.start, 6) for c in alone]
    assert [c.score for c in shifted] == pytest.approx([c.score for c in alone], abs=1e-5)


def test_a_call_detector_is_found_by_name_but_is_no_window_classifier(models_dir):
    """`--model batdetect2-uk` finds it; the classifiers' list (species names, the range model's labels) does not."""
    assert find(models_dir, "batdetect2-uk").output_kind == "calls"
    assert "batdetect2-uk" not in [m.name for m in discover(models_dir)]
    with pytest.raises(ModelError, match="not a call detector"):
        CallDetector(find(models_dir, "birdnet-v2.4"))
    assert read_call_spec(load_manifest(models_dir / "batdetect2-uk")).threshold == 0.3


def test_edge_models_lists_it_as_a_call_detector(models_dir):
    (folder,) = [f for f in model_folders(models_dir) if f.name == "batdetect2-uk"]
    assert folder.kind == "call detector" and folder.problems() == []
    assert folder.detail == "calls in 3 s chunks @ 256000 Hz, 17 classes, fp32"


def test_peak_frequencies_are_where_these_bats_call(detector):
    """Most energy at the frequencies British bat guides give: greater horseshoe 80-84 kHz (its constant
    frequency), common pipistrelle about 42-51 kHz (9 horseshoe calls, 9 pipistrelle calls here)."""
    peaks_of = {}
    for name in ("20180627_215323-RHIFER-LR_0_0.5.wav", "20180530_213516-EPTSER-LR_0_0.5.wav"):
        audio, rate = sf.read(DATA / "bats" / name, dtype="float32")
        for call in detector.calls(soxr.resample(audio, rate, 256000)):
            peaks_of.setdefault(detector.labels[call.best()].scientific_name, []).append(call.peak_freq)
    assert 80000 <= np.median(peaks_of["Rhinolophus ferrumequinum"]) <= 84000, "one call cut short at 72 kHz"
    assert all(42000 <= f <= 51000 for f in peaks_of["Pipistrellus pipistrellus"])
