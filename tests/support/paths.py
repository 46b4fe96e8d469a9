"""Where the tests find the repository, its recordings, its bundled models and the golden records."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
MODELS = ROOT / "models"
GOLDEN = ROOT / "tests" / "golden"
