"""tools/models/mel_member.py: a random-weight EfficientNet-B0 member that edge loads, feeds and runs like any other."""

import importlib.util
import subprocess
import sys

import numpy as np
import onnx
import pytest
import soundfile as sf
import soxr

from edge.inference.frontend import front_end_for
from edge.inference.manifest import load_manifest
from edge.inference.sessions import make_session
from support.paths import DATA, ROOT

TOOL = ROOT / "tools" / "models" / "mel_member.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("mel_member", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Seed 0 written by the function and by the command line, seed 1 by the function."""
    folder, cli_folder = tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("cli")
    tool = load_tool()
    built = {
        "seed0": tool.write_mel_member(folder, "effnet", seed=0),
        "seed1": tool.write_mel_member(folder, "effnet-seed1", seed=1),
    }
    subprocess.run(
        [sys.executable, "-m", "tools.models.mel_member", str(cli_folder), "--name", "effnet", "--seed", "0"],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=ROOT,
    )
    built["seed0-cli"] = cli_folder / "effnet"
    return built


def crops(rate: int, length: int) -> np.ndarray:
    """Three crops of real recordings at `rate`: two of a dawn chorus, one of a spinetail."""

    def resampled(name: str) -> np.ndarray:
        audio, original = sf.read(str(DATA / name), dtype="float32", always_2d=True)
        return soxr.resample(audio.mean(axis=1), original, rate)

    birds, spinetail = resampled("opso_birds_10s.wav"), resampled("maad_spinetail.wav")
    return np.stack([birds[:length], birds[length : 2 * length], spinetail[:length]])


def test_member_scores_real_audio_through_edge_front_end(members):
    manifest = load_manifest(members["seed0"])
    assert manifest.checksum_ok() and manifest.input_kind == "logmel" and manifest.output_kind == "probabilities"
    assert manifest.licence == "MIT" and "random" in manifest.title.lower()
    labels = manifest.labels()
    taxonomy = (ROOT / "models" / "birdnet-v2.4" / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert len(labels) == 182 and {label.label for label in labels} <= set(taxonomy)

    mel = front_end_for(manifest)(crops(manifest.sample_rate, manifest.input_length))
    assert mel.shape == (3, 1, 128, 501)
    session = make_session(manifest.path)
    (probabilities,) = session.run([manifest.output_name], {manifest.input_name: mel})
    assert probabilities.shape == (3, 182)
    assert np.all(np.isfinite(probabilities)) and np.all((probabilities > 0) & (probabilities < 1))
    assert probabilities.std() > 0.05  # not stuck at one value, nor all at 0 or 1
    assert np.mean((probabilities < 1e-3) | (probabilities > 1 - 1e-3)) < 0.5
    assert np.abs(probabilities[0] - probabilities[1]).max() > 1e-3
    assert np.abs(probabilities[0] - probabilities[2]).max() > 1e-3

    (one,) = session.run([manifest.output_name], {manifest.input_name: mel[:1]})  # the batch is dynamic
    np.testing.assert_allclose(one, probabilities[:1], atol=1e-5)


def test_member_is_efficientnet_b0_sized(members):
    model = onnx.load(str(members["seed0"] / "model.onnx"))
    parameters = sum(int(np.prod(tensor.dims)) for tensor in model.graph.initializer)
    assert 3.5e6 < parameters < 6e6
    assert model.opset_import[0].version == 17
    ops = [node.op_type for node in model.graph.node]
    # stem; per block expand, depthwise, two squeeze-excite and project (the first block expands nothing); head
    assert ops.count("Conv") == 1 + 16 * 5 - 1 + 1
    assert ops.count("GlobalAveragePool") == 16 + 1 and ops.count("Add") == 9


def test_seed_decides_the_bytes(members):
    weights = {name: (path / "model.onnx").read_bytes() for name, path in members.items()}
    assert weights["seed0"] == weights["seed0-cli"]
    assert (members["seed0"] / "manifest.toml").read_bytes() == (members["seed0-cli"] / "manifest.toml").read_bytes()
    assert weights["seed0"] != weights["seed1"]
    assert (members["seed0"] / "labels.txt").read_text() != (members["seed1"] / "labels.txt").read_text()
