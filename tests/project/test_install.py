"""edge as a user installs it: a wheel built from this tree, installed into a fresh virtualenv outside it."""

import json
import shutil
import subprocess
import sys
import venv

import pytest

from support.paths import ROOT

# What a wheel is not built from: the checkout's own environment, outputs and tests.
TOP_LEVEL_LEFT_OUT = {
    ".git",
    ".venv",
    "build",
    "dist",
    "edge.egg-info",
    "edge-out",
    ".pytest_cache",
    "data",
    "inbox",
    "tests",
}


def left_out(directory, names):
    return {n for n in names if n == "__pycache__" or (directory == str(ROOT) and n in TOP_LEVEL_LEFT_OUT)}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel and a virtualenv with it installed, neither of them inside the checkout."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=left_out)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(work / "dist")],
        check=True,
        capture_output=True,
        timeout=900,
    )
    (wheel,) = (work / "dist").glob("edge-*.whl")
    venv.create(work / "venv", with_pip=True)
    pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=1800)
    shutil.rmtree(source)
    return wheel, work


def run(installed, *args, check=True):
    wheel, work = installed
    result = subprocess.run(
        [str(work / "venv" / "bin" / "edge"), *args],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "HOME": str(work)},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"edge {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def test_the_wheel_carries_the_models(installed):
    wheel, _ = installed
    listing = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True, check=True
    ).stdout
    for name in (
        "birdnet-v2.4/model.onnx",
        "birdnet-v2.4-range/model.onnx",
        "silero-vad/model.onnx",
        "birdnet-v2.4-names/names.toml",
        "birdnet-v2.4/LICENSE",
    ):
        assert f"edge/models/{name}" in listing, name
    print(f"wheel: {wheel.stat().st_size / 1e6:.1f} MB")


def test_installed_edge_lists_checks_and_replays(installed, data):
    _, work = installed
    listing = run(installed, "models").stdout
    for name in ("birdnet-v2.4", "birdnet-v2.4-int8", "birdnet-v2.4-range", "silero-vad", "birdnet-v2.4-names"):
        assert name in listing, name
    assert "MISMATCH" not in listing and "site-packages/edge/models" in listing.replace("\n", "")
    shutil.copy(data / "maad_spinetail.wav", work / "recording.wav")
    run(installed, "replay", "recording.wav", "--out", "out", "--quiet")
    records = [json.loads(line) for line in (work / "out" / "detections.jsonl").read_text().splitlines()]
    assert any(r["scientific_name"] == "Cranioleuca erythrops" and r["confidence"] > 0.9 for r in records)
    species = run(installed, "species", "--lat", "50.1", "--lon", "8.7", "--date", "2024-06-10").stdout
    assert "Turdus merula" in species


def test_installed_config_check_finds_the_bundled_models(installed, tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n\n[source]\ntype = "folder"\npath = "{tmp_path}"\n')
    assert "valid" in run(installed, "config", "check", str(config)).stdout
    config.write_text(f'models_dir = "{tmp_path / "none"}"\n' + config.read_text())
    result = run(installed, "config", "check", str(config), check=False)
    assert result.returncode == 1 and "no such models folder" in result.stderr
    assert "Traceback" not in result.stderr
