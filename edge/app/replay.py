"""What a replay is: its options, the models and pipeline each analysing process loads, and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

from edge.audio.windower import Windower, WindowSpec
from edge.events.detector import Detector, DetectorOptions
from edge.inference.ensemble import MemberSpec, load_ensemble
from edge.inference.manifest import find
from edge.inference.member import MemberOptions
from edge.pipeline import Pipeline
from edge.screen.alerts import AlertGate, AlertOptions
from edge.screen.species import SpeciesFilter, SpeciesOptions
from edge.screen.stage import Screen
from edge.sinks.summary import Summary
from edge.sources.files import DecodeOptions
from edge.types import Detection


@dataclass(frozen=True)
class ReplayOptions:
    window: WindowSpec
    member: MemberOptions
    detector: DetectorOptions
    decode: DecodeOptions
    formats: tuple[str, ...]
    species: SpeciesOptions = SpeciesOptions()  # no location, no lists: every class may be reported
    resampler: str = "kaiser_fast"

    @classmethod
    def build(
        cls,
        *,
        window: float,
        hop: float,
        crop_stride: float,
        sensitivity: float,
        min_conf: float,
        top_k: int,
        channel: int | None,
        naive_zone: tzinfo,
        threads: int,
        formats: tuple[str, ...],
        join_gap: float | None = 0.5,
        time_expansion: float = 1.0,
        species: SpeciesOptions = SpeciesOptions(),
        resampler: str = "kaiser_fast",
    ):
        return cls(
            window=WindowSpec(seconds=window, hop=hop),
            member=MemberOptions(crop_stride=crop_stride, sensitivity=sensitivity, intra_op_threads=threads),
            detector=DetectorOptions(min_confidence=min_conf, top_k=top_k),
            decode=DecodeOptions(
                channel=channel, naive_zone=naive_zone, join_gap=join_gap, time_expansion=time_expansion
            ),
            formats=formats,
            species=species,
            resampler=resampler,
        )


@dataclass(frozen=True)
class ReplayResult:
    summary: Summary
    recordings: int
    failed: list[tuple[str, str]]
    audio_seconds: float
    damaged: list[tuple[str, str]]
    species_weeks: tuple[int, ...] = ()  # the weeks the range filter was worked out for, when located
    skipped: int = 0  # recordings an earlier replay into the same folder had done
    wall_seconds: float = 0.0
    states: dict[str, int] = field(default_factory=dict)  # the job's recordings by state, earlier replays included


@dataclass(frozen=True)
class Analysis:
    """The models of a replay, loaded once per process, and the pipeline they make: it takes any number of
    streams one after the other. `species` tells the weeks its range filter was worked out for."""

    pipeline: Pipeline[Detection]
    species: SpeciesFilter


def finds_calls(models_dir: Path, model_names: list[str]) -> bool:
    """Whether a call detector is among the models (its calls get a table); ModelError for an unknown one."""
    return any(find(models_dir, MemberSpec.parse(name).name).output_kind == "calls" for name in model_names)


def load_analysis(models_dir: Path, model_names: list[str], options: ReplayOptions) -> Analysis:
    """Raises ModelError for a model that cannot be loaded, ValueError for species no model knows."""
    specs = [MemberSpec.parse(name) for name in model_names]
    ensemble = load_ensemble(models_dir, specs, options.window, options.member, place=options.species.place)
    windower = Windower(options.window, ensemble.sample_rates, options.resampler)
    species = SpeciesFilter.load(options.species, ensemble.taxonomy.labels, models_dir)
    if species.unknown:  # a typo would silently report, or drop, nothing
        raise ValueError(
            f"no model knows the species {', '.join(map(repr, species.unknown))} of the include or "
            "exclude list (give a scientific or common name, or a label, of the models)"
        )
    screen = Screen(AlertGate(AlertOptions(), ensemble.taxonomy.labels), species)  # no alert classes
    return Analysis(Pipeline(windower, ensemble, screen, Detector(options.detector)), species)
