"""BirdNET's location/season ("range") model: which labels are expected at a place in a given week.

BirdNET-Analyzer runs it to build a local species list and drops detections of labels scoring below 0.03
there. The ONNX file is made by tools/models/convert_range.py. Its manifest is `range.toml`, not `manifest.toml`:
edge.inference.manifest.discover reads every `manifest.toml` under the models folder as an audio classifier and fails
on one without a sample rate.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort

from edge.inference.manifest import ModelError, parse_label, read_manifest_file, verified
from edge.inference.sessions import make_session

MODEL_NAME = "birdnet-v2.4-range"
MANIFEST_FILE = "range.toml"
YEAR_ROUND = -1
THRESHOLD = 0.03  # BirdNET-Analyzer 2.4.0: config.LOCATION_FILTER_THRESHOLD, kept when score >= threshold


def week_of(date: datetime.date) -> int:
    """BirdNET's week, 1..48: four per month, days 1-7, 8-14, 15-21 and 22 to the month's end.

    The convention BirdNET-Analyzer documents: "Values in [1, 48] (4 weeks per month)" (birdnet_analyzer 2.4.0,
    cli.py, species_list_args, help of --week) and "a simplified system where each month is divided into four
    weeks" (lang/en.json, species-list-coordinates-week-slider-info); it takes the week as given and has no
    date conversion of its own. birdnetlib 0.18.1 (utils.return_week_48_from_datetime) differs: it spreads the
    48 weeks evenly over the year, ceil(day_of_year / days_in_year * 48), so Jan 22 is its week 3, Jan 31 its
    week 5. We follow BirdNET-Analyzer, whose convention the model was trained with.
    """
    return (date.month - 1) * 4 + min(4, (date.day - 1) // 7 + 1)


class ExpectedLabel(NamedTuple):
    """A label the range model expects; a tuple so that `for scientific, common, score in ...` reads plainly."""

    scientific_name: str
    common_name: str
    score: float  # occurrence probability, 0..1


class RangeModel:
    """The range model in ONNX Runtime on one thread: one small MLP run per place and week."""

    def __init__(self, session: ort.InferenceSession, scientific: tuple[str, ...], common: tuple[str, ...]):
        self.session = session
        self.labels = scientific
        self.common_names = common
        self.input_name = session.get_inputs()[0].name
        classes = session.get_outputs()[0].shape[-1]
        if classes != len(scientific):
            raise ModelError(f"range model has {classes} outputs but {len(scientific)} labels")

    @classmethod
    def load(cls, models_dir: Path) -> RangeModel:
        """Load `birdnet-v2.4-range` under `models_dir`, refusing a model.onnx whose sha256 is not the manifest's."""
        directory = models_dir / MODEL_NAME
        manifest_path = directory / MANIFEST_FILE
        manifest = read_manifest_file(
            manifest_path, missing="no range model manifest (run python -m tools.models.convert_range)"
        )
        try:
            model_path, expected_sha = directory / manifest["file"], manifest["sha256"]
            labels_path = directory / manifest["labels"]
        except (KeyError, TypeError) as error:
            raise ModelError(f"{manifest_path}: invalid manifest: {error!r}") from error
        lines = [line.strip() for line in labels_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        labels = [parse_label(line, "scientific_common") for line in lines]
        session = make_session(verified(model_path, expected_sha, manifest_path))  # one thread
        return cls(
            session, tuple(label.scientific_name for label in labels), tuple(label.common_name for label in labels)
        )

    def occurrence(self, lat: float, lon: float, week: int) -> np.ndarray:
        """Occurrence probability per label, float32, in labels.txt order."""
        check_place_and_week(lat, lon, week)
        row = np.array([[lat, lon, week]], dtype=np.float32)
        return self.session.run(None, {self.input_name: row})[0][0]

    def expected(self, lat: float, lon: float, week: int, threshold: float = THRESHOLD) -> list[ExpectedLabel]:
        """Labels scoring at least `threshold`, highest first."""
        scores = self.occurrence(lat, lon, week)
        order = np.argsort(-scores, kind="stable")
        return [
            ExpectedLabel(self.labels[i], self.common_names[i], float(scores[i]))
            for i in order
            if scores[i] >= threshold
        ]


def check_place_and_week(lat: float, lon: float, week: int) -> None:
    """ValueError for a place off the globe or a week the model was not trained on (NaN fails too)."""
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside -90..90 degrees")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside -180..180 degrees")
    if isinstance(week, bool) or not isinstance(week, (int, np.integer)):
        raise ValueError(f"week {week!r} is not an integer (1..48, or -1 for the whole year)")
    if not (1 <= week <= 48 or week == YEAR_ROUND):
        raise ValueError(f"week {week} is outside 1..48 (four per month, see week_of) and is not -1 (year-round)")
