"""The bundled BatDetect2 model (ONNX Runtime, with edge.inference.calls' NumPy front-end and decoding) against
batdetect2's own PyTorch inference, on real bat recordings: the same calls, times within 1 ms, probabilities
within 1e-3.

batdetect2's calls are stored in tests/data/bats/batdetect2-reference.json (made by
`python -m tools.models.batdetect2_reference`); where torch and batdetect2 are installed (the convert-bats
extra) they are also computed afresh. Both are given the audio as batdetect2 resamples it (librosa's
polyphase filter); edge's own soxr resampling is compared separately, with the tolerance it earns.
"""

import importlib.util
import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr

from edge.inference.calls import CallBox, CallDetector
from edge.inference.manifest import discover, load_manifest

RATE = 256000
TIME_TOLERANCE = 1e-3  # seconds
PROBABILITY_TOLERANCE = 1e-3


@pytest.fixture
def bats(data) -> Path:
    return data / "bats"


@pytest.fixture
def detector(models_dir) -> CallDetector:
    return CallDetector(load_manifest(models_dir / "batdetect2-uk"))


@pytest.fixture
def reference(bats) -> dict:
    return json.loads((bats / "batdetect2-reference.json").read_text())


def as_batdetect2_loads(path: Path) -> tuple[np.ndarray, int]:
    """The recording at 256 kHz as batdetect2 loads it (librosa, then its polyphase resampler), and its rate."""
    audio, rate = librosa.load(path, sr=None, dtype=np.float32)
    return librosa.resample(audio, orig_sr=rate, target_sr=RATE, res_type="polyphase"), rate


def as_edge_loads(path: Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def rows(calls: list[dict]) -> np.ndarray:
    """[calls, 5 + classes]: start, end, low, high, score, probabilities; by time, then frequency."""
    keys = ("start", "end", "low_freq", "high_freq", "score")
    table = np.array([[*(c[key] for key in keys), *c["probabilities"]] for c in calls])
    return table[np.lexsort((table[:, 2], table[:, 0]))] if len(table) else table


def as_dicts(calls: list[CallBox]) -> list[dict]:
    return [
        {
            "start": c.start,
            "end": c.end,
            "low_freq": c.low_freq,
            "high_freq": c.high_freq,
            "score": c.score,
            "probabilities": c.probabilities.tolist(),
        }
        for c in calls
    ]


def differences(got: list[dict], expected: list[dict]) -> dict[str, float]:
    """The largest differences between two lists of the same calls: times (s), frequencies (Hz),
    probabilities (the detection score and every class's)."""
    a, b = rows(got), rows(expected)
    assert a.shape == b.shape, f"{len(got)} calls, batdetect2 has {len(expected)}"
    if not len(a):
        return {"time": 0.0, "frequency": 0.0, "probability": 0.0}
    diff = np.abs(a - b)
    return {"time": diff[:, :2].max(), "frequency": diff[:, 2:4].max(), "probability": diff[:, 4:].max()}


def check(found: dict[str, list[dict]], expected: dict[str, list[dict]], what: str) -> None:
    worst = {"time": 0.0, "frequency": 0.0, "probability": 0.0}
    for name, calls in expected.items():
        d = differences(found[name], calls)
        worst = {key: max(worst[key], d[key]) for key in worst}
    count = sum(len(calls) for calls in expected.values())
    print(
        f"{what}: {count} calls in {len(expected)} recordings; max |difference| time {worst['time']:.2e} s, "
        f"frequency {worst['frequency']:.2e} Hz, probability {worst['probability']:.2e}"
    )
    assert worst["time"] <= TIME_TOLERANCE
    assert worst["frequency"] <= 1.0
    assert worst["probability"] <= PROBABILITY_TOLERANCE


def onnx_calls(detector: CallDetector, bats: Path, threshold: float) -> dict[str, list[dict]]:
    found = {}
    for path in sorted(bats.glob("*.wav")):
        audio, _ = as_batdetect2_loads(path)
        found[path.name] = as_dicts(detector.calls_in_chunks(audio, threshold))
    return found


def test_onnx_calls_match_batdetect2s_stored_calls(detector, bats, reference):
    assert len(reference["recordings"]) == 3
    check(onnx_calls(detector, bats, reference["threshold"]), reference["recordings"], "stored reference")


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("batdetect2") is None,
    reason="batdetect2's PyTorch inference needs the convert-bats extra (torch and batdetect2); the stored "
    "reference is checked without them",
)
def test_onnx_calls_match_batdetect2_run_now(detector, bats, reference):
    from tools.models.batdetect2_reference import THRESHOLD, reference_calls

    expected = {path.name: reference_calls(path) for path in sorted(bats.glob("*.wav"))}
    check(onnx_calls(detector, bats, THRESHOLD), expected, "batdetect2 run now")


def test_calls_at_the_default_threshold_are_the_recordings_listed_calls(detector, bats):
    """The JSON beside each recording lists the calls batdetect2's command line gives at 0.3 (rounded to
    0.1 ms, whole Hz and 3 decimals), with its best class; the manifest's threshold is 0.3."""
    labels = [label.scientific_name for label in detector.labels]
    assert detector.spec.threshold == 0.3
    total = 0
    for path in sorted(bats.glob("*.wav")):
        listed = json.loads(path.with_name(path.name + ".json").read_text())["annotation"]
        audio, rate = as_batdetect2_loads(path)
        calls = detector.calls_in_chunks(audio, nyquist=rate / 2)
        assert len(calls) == len(listed), path.name
        got = sorted(calls, key=lambda c: (round(c.start, 4), int(c.low_freq)))
        listed = sorted(listed, key=lambda c: (c["start_time"], c["low_freq"]))
        for call, expected in zip(got, listed, strict=True):
            assert abs(call.start - expected["start_time"]) <= 1e-4 and abs(call.end - expected["end_time"]) <= 1e-4
            assert abs(int(call.low_freq) - expected["low_freq"]) <= 1
            assert abs(int(call.high_freq) - expected["high_freq"]) <= 1
            assert labels[call.best()] == expected["class"]
            assert abs(call.score - expected["det_prob"]) <= 1e-3
            assert abs(call.probabilities.max() - expected["class_prob"]) <= 1e-3
        total += len(calls)
    assert total == 15 + 20 + 9


def test_soxr_resampling_finds_the_same_calls(detector, bats):
    """edge resamples with soxr, not librosa's polyphase filter: the input differs in its last bits, and the
    calls above the threshold are batdetect2's, their times within 1 ms, probabilities within 0.01."""
    worst = {"time": 0.0, "probability": 0.0}
    for path in sorted(bats.glob("*.wav")):
        reference_audio, rate = as_batdetect2_loads(path)
        expected = as_dicts(detector.calls_in_chunks(reference_audio, nyquist=rate / 2))
        got = as_dicts(detector.calls_in_chunks(as_edge_loads(path), nyquist=rate / 2))
        d = differences(got, expected)
        worst = {key: max(worst[key], d[key]) for key in worst}
    print(
        f"soxr against polyphase: max |difference| time {worst['time']:.2e} s, probability {worst['probability']:.2e}"
    )
    assert worst["time"] <= TIME_TOLERANCE and worst["probability"] <= 0.01


def test_call_detectors_are_not_window_classifiers(models_dir):
    assert "batdetect2-uk" not in [m.name for m in discover(models_dir)]
    assert [m.name for m in discover(models_dir, calls=True)] == ["batdetect2-uk"]
