from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
MODELS = ROOT / "models"


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def models_dir() -> Path:
    return MODELS


@pytest.fixture
def models_with_birdclef(tmp_path, models_dir) -> Path:
    """A models folder with BirdNET, a BirdCLEF-style log-mel member (tests/tiny_models.py) and the speech
    detector the daemon runs by default."""
    from tiny_models import write_logmel_model

    folder = tmp_path / "models"
    for name in ("birdnet-v2.4", "silero-vad"):
        shutil.copytree(models_dir / name, folder / name)
    write_logmel_model(folder)
    return folder


def edge_cli(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the `edge` command as a user would, in a subprocess."""
    result = subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=cwd,
                            timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"edge {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def write_resampled(source: Path, target: Path, rate: int) -> Path:
    """A real recording converted to `rate` once, so that every analyser reads identical samples."""
    import soxr

    audio, original = sf.read(str(source), dtype="float32", always_2d=True)
    sf.write(str(target), soxr.resample(audio.mean(axis=1), original, rate), rate, subtype="FLOAT")
    return target


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
