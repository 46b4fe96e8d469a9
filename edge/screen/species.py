"""Which classes a box may report, and from what score: the range filter, include/exclude lists and
per-species thresholds, applied to window scores before smoothing.

* Range filter: BirdNET's location/season model gives each species' expected occurrence at the box's
  latitude and longitude in a week of BirdNET's 48-week year (edge.screen.range_model). A species below
  `range_threshold` (BirdNET-Analyzer's default 0.03) is dropped. The list is worked out from the date of the
  audio (a replayed archive is filtered for the season it was recorded in), once per week reached, never per
  window; a fixed `week` (`edge replay --week/--date`) overrides the audio's date. Classes that are not
  species in the model's sense (labels whose common name is their scientific name: "Engine", "Gun", "Human
  vocal", "Dog"...) and the alert classes are never range-filtered.
* include: always reported, whatever the range model says (BirdNET-Go's `include` list has this meaning).
* exclude: never reported; wins over include.
* thresholds file: lines `Scientific name,threshold` ('#' starts a comment): that species starts an event
  at this smoothed score instead of the smoother's `on`.

Names in the lists (also read from files, one a line: `read_names`) and the thresholds file are matched
case-insensitively against scientific name, common name or label; a name no model knows is logged (a typo
would otherwise silently report nothing).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import structlog

from edge.screen.range_model import THRESHOLD, RangeModel, check_place_and_week, week_of
from edge.types import Label, Scores, index_by_name

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SpeciesOptions:
    latitude: float | None = None
    longitude: float | None = None
    range_threshold: float = THRESHOLD  # BirdNET-Analyzer's
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    thresholds_file: Path | None = None
    week: int | None = None  # BirdNET week (1..48, or -1: the whole year) for all audio, whatever its date
    undated_week: int | None = None  # the week of audio of unknown date; None: the current week (live audio)

    @property
    def place(self) -> tuple[float, float] | None:
        """(latitude, longitude) when both are set, else None."""
        if self.latitude is None or self.longitude is None:
            return None
        return self.latitude, self.longitude

    @property
    def located(self) -> bool:
        return self.place is not None


class SpeciesListError(ValueError):
    """A thresholds file or species list that cannot be read: named with its line."""


def read_names(path: Path) -> tuple[str, ...]:
    """A species list: one name a line (scientific, common, or a model label such as BirdNET-Analyzer's
    species-list lines "Genus species_Common Name"), matched as the configuration's include/exclude names;
    '#' starts a comment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SpeciesListError(f"{path}: cannot read the species list: {error}") from error
    return tuple(name for line in lines if (name := line.split("#", 1)[0].strip()))


def read_thresholds(path: Path) -> dict[str, float]:
    thresholds = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SpeciesListError(f"{path}: cannot read the thresholds file: {error}") from error
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        name, _, value = text.rpartition(",")
        try:
            threshold = float(value)
        except ValueError:
            threshold = -1.0
        if not name.strip() or not 0 <= threshold <= 1:
            raise SpeciesListError(
                f"{path}:{number}: expected 'Scientific name,threshold' with a threshold "
                f"from 0 to 1, got {line.strip()!r}"
            )
        thresholds[name.strip()] = threshold
    return thresholds


def is_species(label: Label) -> bool:
    """What the model's manifest says (`not_species`), else: a class whose common name is its scientific name
    ("Engine_Engine") is not a species."""
    if label.species is not None:
        return label.species
    return label.common_name.casefold() != label.scientific_name.casefold()


class SpeciesFilter:
    """Masks window scores of the classes a box may not report; `thresholds` gives the smoother its per-class
    start thresholds (NaN: the smoother's own `on`)."""

    def __init__(
        self,
        options: SpeciesOptions,
        labels: tuple[Label, ...],
        range_model: RangeModel | None,
        exempt: Collection[int] = (),
    ):
        if options.located and range_model is None:
            raise ValueError("a location is configured but no range model was given")
        if (place := options.place) is not None:  # refused here rather than at the first window
            for week in {week for week in {1, options.week, options.undated_week} if week is not None}:
                check_place_and_week(*place, week)
        self.options = options
        self.labels = labels
        self.range_model = range_model if options.located else None
        index = index_by_name(labels)
        file_thresholds = read_thresholds(options.thresholds_file) if options.thresholds_file else {}
        names = [*options.include, *options.exclude, *file_thresholds]
        self.unknown = sorted({n for n in names if n.casefold() not in index})
        if self.unknown:
            log.error("species_unknown", names=self.unknown, hint="match a scientific or common name of the models")
        pick = lambda wanted: {index[n.casefold()] for n in wanted if n.casefold() in index}  # noqa: E731
        self.include, self.exclude = pick(options.include), pick(options.exclude)
        self.thresholds = np.full(len(labels), np.nan, dtype=np.float32)
        for name, threshold in file_thresholds.items():
            if name.casefold() in index:
                self.thresholds[index[name.casefold()]] = threshold
        self.unfiltered = {i for i, label in enumerate(labels) if not is_species(label)} | set(exempt)
        self._range_columns = self._map_range_labels()
        self.week: int | None = None
        self.weeks: set[int] = set()  # every week the range model was run for
        self._occurrence: np.ndarray | None = None  # the range model's output for `week`
        self._allowed = self._mask()

    @classmethod
    def load(
        cls,
        options: SpeciesOptions,
        labels: tuple[Label, ...],
        models_dir: Path,
        exempt: Collection[int] = (),
        range_model: RangeModel | None = None,
    ) -> SpeciesFilter:
        """The filter, with the range model loaded from `models_dir` when a location asks for it and none is
        given (a reload reuses the one it has)."""
        if options.located and range_model is None:
            range_model = RangeModel.load(models_dir)
        return cls(options, labels, range_model, exempt)

    def _map_range_labels(self) -> np.ndarray | None:
        """Index into the range model's outputs of each label; -1 for a class the range model lacks (kept)."""
        if self.range_model is None:
            return None
        position = {name: i for i, name in enumerate(self.range_model.labels)}
        return np.array([position.get(label.scientific_name, -1) for label in self.labels], dtype=np.int64)

    def _mask(self) -> np.ndarray:
        allowed = np.ones(len(self.labels), dtype=bool)
        if self._occurrence is not None:
            columns = self._range_columns
            assert columns is not None  # mapped from the range model that gave the occurrence
            known = columns >= 0
            expected = np.ones(len(self.labels), dtype=bool)
            expected[known] = self._occurrence[columns[known]] >= self.options.range_threshold
            expected[list(self.unfiltered)] = True
            allowed &= expected
        allowed[list(self.include)] = True
        allowed[list(self.exclude)] = False
        return allowed

    def week_at(self, moment: datetime | None) -> int:
        """The fixed week if one is set, else the week of the audio's date; audio of unknown date gets
        `undated_week`, else the current week (live audio is heard now)."""
        if self.options.week is not None:
            return self.options.week
        if moment is not None:
            return week_of(moment.date())
        if self.options.undated_week is not None:
            return self.options.undated_week
        return week_of(datetime.now(UTC).date())

    def allowed_on(self, day: date) -> np.ndarray:
        """The mask for a day (`week_at` midnight UTC of it)."""
        return self.allowed_in(self.week_at(datetime(day.year, day.month, day.day, tzinfo=UTC)))

    def allowed_in(self, week: int) -> np.ndarray:
        """The mask for a week; the range model runs only when the week changes."""
        if self.range_model is not None and week != self.week:
            self.week = week
            self.weeks.add(week)
            place = self.options.place
            assert place is not None  # a range model is kept only for a located box
            self._occurrence = self.range_model.occurrence(*place, week)
            self._allowed = self._mask()
            log.info(
                "species_list_updated",
                week=week,
                allowed=int(self._allowed.sum()),
                of=len(self.labels),
                latitude=self.options.latitude,
                longitude=self.options.longitude,
            )
        return self._allowed

    def apply(self, scores: Scores) -> Scores:
        window = scores.window
        allowed = self.allowed_in(self.week_at(window.stream.utc_at(window.start)))
        if allowed.all():
            return scores
        return replace(scores, probabilities=np.where(allowed, scores.probabilities, 0).astype(np.float32))

    def expected(self, day: date) -> list[tuple[Label, float | None]]:
        """The classes this box may report on `day`, with their range score (None: not range-filtered), by
        descending score: `edge species`."""
        allowed = self.allowed_on(day)
        scores: list[float | None] = [None] * len(self.labels)
        if self._occurrence is not None:
            assert self._range_columns is not None  # mapped from the range model that gave the occurrence
            for i, column in enumerate(self._range_columns):
                if column >= 0 and i not in self.unfiltered:
                    scores[i] = float(self._occurrence[column])
        rows = [(self.labels[i], scores[i]) for i in np.flatnonzero(allowed)]
        return sorted(rows, key=lambda row: (row[1] is None, -(row[1] or 0), row[0].scientific_name))
