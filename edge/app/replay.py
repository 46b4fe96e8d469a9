"""`edge replay`: wire a file source, the ensemble and file sinks together and run the pipeline once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from edge.audio.windower import Windower, WindowSpec
from edge.events.detector import Detector, DetectorOptions
from edge.inference.ensemble import MemberSpec, load_ensemble
from edge.inference.member import MemberOptions
from edge.pipeline import Pipeline
from edge.screen.alerts import AlertGate, AlertOptions
from edge.screen.species import SpeciesFilter, SpeciesOptions
from edge.screen.stage import Screen
from edge.sinks.files import RavenSink, file_sinks
from edge.sinks.summary import Summary
from edge.sources.files import DecodeOptions, FileSource
from edge.types import AudioChunk, Detection, Sink

LONG_INPUT_SECONDS = 60.0


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
        species: SpeciesOptions = SpeciesOptions(),
        resampler: str = "kaiser_fast",
    ):
        return cls(
            window=WindowSpec(seconds=window, hop=hop),
            member=MemberOptions(crop_stride=crop_stride, sensitivity=sensitivity, intra_op_threads=threads),
            detector=DetectorOptions(min_confidence=min_conf, top_k=top_k),
            decode=DecodeOptions(channel=channel, naive_zone=naive_zone, join_gap=join_gap),
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


def replay(
    paths: list[Path],
    models_dir: Path,
    model_names: list[str],
    out: Path,
    options: ReplayOptions,
    progress: bool = False,
) -> ReplayResult:
    ensemble = load_ensemble(models_dir, [MemberSpec(name) for name in model_names], options.window, options.member)
    source = FileSource(paths, options.decode)
    windower = Windower(options.window, ensemble.sample_rates, options.resampler)
    species = SpeciesFilter.load(options.species, ensemble.taxonomy.labels, models_dir)
    if species.unknown:  # a typo would silently report, or drop, nothing
        raise ValueError(
            f"no model knows the species {', '.join(map(repr, species.unknown))} of the include or "
            "exclude list (give a scientific or common name, or a label, of the models)"
        )
    summary = Summary()
    files = file_sinks(
        out, options.formats, append=False, paths={stream_id: path for path, stream_id in source.recordings}
    )
    sinks = [*files, summary]
    tables = [sink for sink in files if isinstance(sink, RavenSink)]
    total = source.total_seconds()
    seconds = 0.0
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeRemainingColumn(),
        disable=not progress or total < LONG_INPUT_SECONDS,
        transient=True,
    )
    with bar:
        task = bar.add_task("replay", total=total)

        def advance(chunk):
            nonlocal seconds
            seconds += chunk.seconds
            for table in tables:
                table.begin(chunk.stream)
            bar.update(task, advance=chunk.seconds, description=chunk.stream.id[-40:])

        screen = Screen(AlertGate(AlertOptions(), ensemble.taxonomy.labels), species)  # no alert classes
        run(source, Pipeline(windower, ensemble, screen, Detector(options.detector)), sinks, on_chunk=advance)
    return ReplayResult(
        summary=summary,
        recordings=len(source.recordings),
        failed=source.failed,
        audio_seconds=seconds,
        damaged=source.damaged,
        species_weeks=tuple(sorted(species.weeks)),
    )


def run(
    source: FileSource, pipeline: Pipeline[Detection], sinks: list[Sink], on_chunk: Callable[[AudioChunk], None]
) -> None:
    """Every chunk of the source through the pipeline, its detections to every sink; then close the sinks
    (also on error)."""
    try:
        for chunk in source.chunks():
            for detection in pipeline.push(chunk):
                assert isinstance(detection, Detection)  # no alert classes, no clips in a replay
                for sink in sinks:
                    sink.emit(detection)
            on_chunk(chunk)
    finally:
        for sink in sinks:
            sink.close()
