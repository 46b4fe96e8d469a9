"""Identify a clip: the species in a short recording a guide uploads, from the station's own models.

The upload runs through the same windower and ensemble as a box's audio (BirdNET by default); each species
is given the highest confidence any window reached, and with a place the range filter drops what is not
expected there that week. Only species are answered: the classes that are not species in the model's sense
(human voice, engine, gun, siren, dog, noise...) are left out, because a phone's recording nearly always
holds its owner's voice or a vehicle, which would push the animal the guide asked about down the list; threats
are the boxes' alert gate's business, not an identification's.

The upload is checked and decoded by edge.station.upload. The analysis runs one at a time, on one thread: the
station's CPU also serves its pages and its boxes, and a request that would queue behind more than a few
others is told the station is busy rather than left waiting.
"""

from __future__ import annotations

import io
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO

import numpy as np
import structlog

from edge.app.sections import DEFAULT_MODEL
from edge.audio.windower import Windower, WindowSpec
from edge.inference.ensemble import Ensemble, MemberSpec, load_ensemble
from edge.inference.manifest import ModelError, default_models_dir
from edge.inference.member import MemberOptions
from edge.screen.range_model import RangeModel
from edge.screen.species import SpeciesFilter, SpeciesOptions, is_species
from edge.station.upload import IdentifyError, UploadLimits, decode_upload, size_of

log = structlog.get_logger(__name__)


class IdentifyBusy(IdentifyError):
    """More identifications are waiting than the station queues: try again after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(
            f"the station is busy identifying other recordings; try again in {retry_after} s",
            HTTPStatus.SERVICE_UNAVAILABLE,
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Identification:
    """A species heard in the upload, with the highest confidence (0..1) of any of its windows."""

    scientific_name: str
    common_name: str
    confidence: float


@dataclass(frozen=True)
class IdentifyOptions:
    """The models (as `edge replay` runs them by default), what is answered (species at or above
    `min_confidence`, at most `top`), the limits on an upload, and how many requests may wait behind the one
    running."""

    models_dir: Path = field(default_factory=default_models_dir)
    model_names: tuple[str, ...] = (DEFAULT_MODEL,)
    min_confidence: float = 0.1
    top: int = 10
    limits: UploadLimits = UploadLimits()
    max_waiting: int = 2
    window: WindowSpec = WindowSpec()
    member: MemberOptions = MemberOptions(intra_op_threads=1)


@dataclass
class _Models:
    ensemble: Ensemble
    species: np.ndarray  # True for the labels that are species
    range_model: RangeModel | None = None


class Identifier:
    """The station's models, loaded once on first use, and one identification at a time."""

    def __init__(self, options: IdentifyOptions = IdentifyOptions()):
        self.options = options
        self._lock = threading.Lock()  # one analysis at a time: the box's CPU is the station's too
        self._counting = threading.Lock()
        self._queued = 0  # running + waiting
        self._models: _Models | None = None
        self._last_seconds = 1.0

    @property
    def loaded(self) -> bool:
        return self._models is not None

    @property
    def queued(self) -> int:
        """Identifications running or waiting to run."""
        return self._queued

    def identify(
        self,
        audio: bytes | BinaryIO,
        latitude: float | None = None,
        longitude: float | None = None,
        day: date | None = None,
    ) -> list[Identification]:
        """The species in `audio` (WAV, FLAC, OGG or MP3: the bytes, or a seekable file of them), most
        confident first. With a place, those the range model does not expect there in the week of `day`
        (default: today, UTC) are dropped. IdentifyError for an upload that cannot be analysed, IdentifyBusy
        when too many wait already."""
        place = check_place(latitude, longitude)
        upload = io.BytesIO(audio) if isinstance(audio, bytes) else audio
        size_of(upload, self.options.limits)
        with self._counting:
            if self._queued > self.options.max_waiting:
                raise IdentifyBusy(max(1, math.ceil(self._last_seconds * self._queued)))
            self._queued += 1
        try:
            with self._lock:
                started = time.monotonic()
                found = self._analyse(upload, place, day or datetime.now(UTC).date())
                self._last_seconds = time.monotonic() - started
        finally:
            with self._counting:
                self._queued -= 1
        log.info("clip_identified", seconds=round(self._last_seconds, 2), species=len(found), located=bool(place))
        return found

    def _analyse(self, upload: BinaryIO, place: tuple[float, float] | None, day: date) -> list[Identification]:
        models = self._load(located=place is not None)
        ensemble = models.ensemble
        best = np.zeros(len(ensemble.taxonomy.labels), dtype=np.float32)
        windower = Windower(self.options.window, ensemble.sample_rates)
        for chunk in decode_upload(upload, self.options.limits):
            for scores in ensemble.score(windower.push(chunk)):
                np.maximum(best, scores.probabilities, out=best)
        allowed = models.species.copy()
        if place is not None:
            filter_options = SpeciesOptions(latitude=place[0], longitude=place[1])
            try:
                species = SpeciesFilter(filter_options, ensemble.taxonomy.labels, models.range_model)
            except ValueError as error:
                raise IdentifyError(str(error)) from error
            allowed &= species.allowed_on(day)
        best = np.where(allowed, best, 0)
        order = [
            i for i in np.argsort(-best, kind="stable")[: self.options.top] if best[i] >= self.options.min_confidence
        ]
        labels = ensemble.taxonomy.labels
        return [Identification(labels[i].scientific_name, labels[i].common_name, float(best[i])) for i in order]

    def _load(self, located: bool) -> _Models:
        """The ensemble on first use; the range model on the first request with a place."""
        options = self.options
        try:
            if self._models is None:
                started = time.monotonic()
                specs = [MemberSpec(name) for name in options.model_names]
                ensemble = load_ensemble(options.models_dir, specs, options.window, options.member)
                species = np.array([is_species(label) for label in ensemble.taxonomy.labels], dtype=bool)
                self._models = _Models(ensemble, species)
                log.info("identify_models_loaded", models=ensemble.name, seconds=round(time.monotonic() - started, 2))
            if located and self._models.range_model is None:
                self._models.range_model = RangeModel.load(options.models_dir)
        except (ModelError, OSError, ValueError) as error:
            log.error("identify_models_unavailable", error=str(error))
            raise IdentifyError(
                "the station cannot identify recordings: its models could not be loaded", HTTPStatus.SERVICE_UNAVAILABLE
            ) from error
        return self._models


def check_place(latitude: float | None, longitude: float | None) -> tuple[float, float] | None:
    """(latitude, longitude) when both are given, None when neither; IdentifyError otherwise."""
    if latitude is None and longitude is None:
        return None
    if latitude is None or longitude is None:
        raise IdentifyError("give both latitude and longitude for the range filter, or neither")
    if not -90 <= latitude <= 90:  # NaN fails too
        raise IdentifyError(f"latitude {latitude} is not between -90 and 90 degrees")
    if not -180 <= longitude <= 180:
        raise IdentifyError(f"longitude {longitude} is not between -180 and 180 degrees")
    return float(latitude), float(longitude)
