"""`edge replay`: wire a file source, the ensemble and file sinks together and run the pipeline once."""

from __future__ import annotations

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
from edge.sources.recording_time import recorder_of
from edge.types import Detection, Sink, Stream

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


@dataclass(frozen=True)
class Analysis:
    """The models of a replay, loaded once per process, and the pipeline they make: it takes any number of
    streams one after the other. `species` tells the weeks its range filter was worked out for."""

    pipeline: Pipeline[Detection]
    species: SpeciesFilter


def load_analysis(models_dir: Path, model_names: list[str], options: ReplayOptions) -> Analysis:
    """Raises ModelError for a model that cannot be loaded, ValueError for species no model knows."""
    ensemble = load_ensemble(models_dir, [MemberSpec(name) for name in model_names], options.window, options.member)
    windower = Windower(options.window, ensemble.sample_rates, options.resampler)
    species = SpeciesFilter.load(options.species, ensemble.taxonomy.labels, models_dir)
    if species.unknown:  # a typo would silently report, or drop, nothing
        raise ValueError(
            f"no model knows the species {', '.join(map(repr, species.unknown))} of the include or "
            "exclude list (give a scientific or common name, or a label, of the models)"
        )
    screen = Screen(AlertGate(AlertOptions(), ensemble.taxonomy.labels), species)  # no alert classes
    return Analysis(Pipeline(windower, ensemble, screen, Detector(options.detector)), species)


class ReplayOutput:
    """Where a replay's detections go: the detection files, the summary and the progress bar, in one
    process whichever process analysed them. A recording's Raven table exists once `begin` names it."""

    def __init__(self, out: Path, options: ReplayOptions, paths: dict[str, Path], total: float, progress: bool):
        self.summary = Summary()
        files = file_sinks(out, options.formats, append=False, paths=paths, recorder_of=recorder_of)
        self.sinks: list[Sink] = [*files, self.summary]
        self.tables = [sink for sink in files if isinstance(sink, RavenSink)]
        self.seconds = 0.0
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
            TimeRemainingColumn(),
            disable=not progress or total < LONG_INPUT_SECONDS,
            transient=True,
        )
        self.task = self.bar.add_task("replay", total=total)

    def begin(self, stream: Stream) -> None:
        for table in self.tables:
            table.begin(stream)

    def emit(self, detection: Detection) -> None:
        for sink in self.sinks:
            sink.emit(detection)

    def end_run(self, name: str) -> None:
        """A run's detections are all emitted: the sinks that write a file per run (Parquet) write it as `name`."""
        for sink in self.sinks:
            if hasattr(sink, "end_run"):
                sink.end_run(name)

    def advance(self, seconds: float, stream_id: str) -> None:
        self.seconds += seconds
        self.bar.update(self.task, advance=seconds, description=stream_id[-40:])

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def replay(
    paths: list[Path],
    models_dir: Path,
    model_names: list[str],
    out: Path,
    options: ReplayOptions,
    progress: bool = False,
) -> ReplayResult:
    """The recordings under `paths` analysed in this process, their detections written under `out`."""
    analysis = load_analysis(models_dir, model_names, options)
    source = FileSource(paths, options.decode)
    output = ReplayOutput(
        out, options, {stream_id: path for path, stream_id in source.recordings}, source.total_seconds(), progress
    )
    with output.bar:
        run(source, analysis.pipeline, output)
    return ReplayResult(
        summary=output.summary,
        recordings=len(source.recordings),
        failed=source.failed,
        audio_seconds=output.seconds,
        damaged=source.damaged,
        species_weeks=tuple(sorted(analysis.species.weeks)),
    )


def run(source: FileSource, pipeline: Pipeline[Detection], output: ReplayOutput) -> None:
    """Every chunk of the source through the pipeline, its detections to the output; then close the output
    (also on error)."""
    try:
        for chunk in source.chunks():
            for detection in pipeline.push(chunk):
                assert isinstance(detection, Detection)  # no alert classes, no clips in a replay
                output.emit(detection)
            output.begin(chunk.stream)
            output.advance(chunk.seconds, chunk.stream.id)
    finally:
        output.close()
