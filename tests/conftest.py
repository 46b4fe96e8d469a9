"""Fixtures every test may ask for; the shared code itself is in support/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from support.paths import DATA, MODELS


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def models_dir() -> Path:
    return MODELS


@pytest.fixture
def models_with_birdclef(tmp_path, models_dir) -> Path:
    """A models folder with BirdNET, a BirdCLEF-style log-mel member (support/models.py) and the speech
    detector the daemon runs by default."""
    from support.models import write_logmel_model

    folder = tmp_path / "models"
    for name in ("birdnet-v2.4", "silero-vad"):
        shutil.copytree(models_dir / name, folder / name)
    write_logmel_model(folder)
    return folder


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
