"""`edge replay`: analyse recordings and write their detections, with a summary table."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from edge.app import logs
from edge.app.job import replay
from edge.app.ledger import LEDGER_NAME
from edge.app.ray_workers import RayWorkers, import_ray
from edge.app.replay import ReplayOptions
from edge.app.sections import DEFAULT_MODEL
from edge.audio.resample import RESAMPLERS
from edge.audio.windower import WindowSpec
from edge.cli.models import models_dir_option
from edge.cli.species import species_filter_options
from edge.cli.types import FiniteRange, GapOrOff
from edge.events.detector import DetectorOptions
from edge.inference.manifest import ModelError
from edge.inference.member import MemberOptions
from edge.screen.range_model import YEAR_ROUND
from edge.sinks.files import FORMATS
from edge.sources.files import known_zone


@click.command(name="replay")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    "model_names",
    multiple=True,
    default=[DEFAULT_MODEL],
    show_default=True,
    help="Model to run (repeat for an ensemble); NAME@day or NAME@night runs it only from sunrise to sunset, "
    "or from sunset to sunrise, at the recording's time (needs --lat/--lon).",
)
@models_dir_option
@click.option(
    "--window",
    type=FiniteRange(0.1, 60),
    default=WindowSpec.seconds,
    show_default=True,
    help="Analysis window, seconds.",
)
@click.option(
    "--hop", type=FiniteRange(0.1, 60), default=WindowSpec.hop, show_default=True, help="Seconds between window starts."
)
@click.option(
    "--crop-stride",
    type=FiniteRange(0.1, 60),
    default=MemberOptions.crop_stride,
    show_default=True,
    help="Grid step, seconds, of the crops a model with a shorter input takes inside a window.",
)
@click.option(
    "--sensitivity",
    type=FiniteRange(0.5, 1.5),
    default=MemberOptions.sensitivity,
    show_default=True,
    help="BirdNET sensitivity: higher reports more.",
)
@click.option(
    "--min-conf",
    type=FiniteRange(0, 1),
    default=DetectorOptions.min_confidence,
    show_default=True,
    help="Minimum confidence of a detection.",
)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=DetectorOptions.top_k,
    show_default=True,
    help="At most this many classes per window.",
)
@click.option(
    "--format",
    "formats",
    default="jsonl,csv,raven",
    show_default=True,
    help=f"Comma-separated output formats: {', '.join(FORMATS)}.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("edge-out"),
    show_default=True,
    help="Folder for the detection files and the job's ledger: the same command run again analyses only "
    "the recordings not done yet.",
)
@click.option("--fresh", is_flag=True, help="Forget what an earlier replay into --out did, and start again.")
@click.option(
    "--channel",
    type=click.IntRange(min=0),
    default=None,
    help="Analyse this channel (0-based) of multi-channel files instead of their mix-down.",
)
@click.option(
    "--timezone",
    "zone",
    default="UTC",
    show_default=True,
    help="Zone of the times in recorder file names that carry none (e.g. Europe/Berlin).",
)
@species_filter_options
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=MemberOptions.intra_op_threads,
    show_default=True,
    help="ONNX Runtime threads per model.",
)
@click.option(
    "--join-gap",
    type=GapOrOff(),
    default="0.5",
    show_default=True,
    help="A recorder's consecutive files whose times meet within this many seconds are analysed as "
    "one stream; off: each file on its own.",
)
@click.option(
    "--time-expansion",
    type=FiniteRange(1, 100),
    default=1.0,
    show_default=True,
    help="Time-expansion factor of a bat detector's recordings (10: played ten times slower than the bats called).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes analysing recordings side by side (a recorder's joined files go to one); "
    "1: all in this process; with --ray, Ray actors.  [default: the number of cores; with --ray, the "
    "cluster's CPUs]",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    default=None,
    help="Analyse on the Ray cluster whose head is at HOST:PORT (auto: the one this machine belongs to); "
    "every node must see the recordings and models at the same paths.",
)
@click.option("--quiet", is_flag=True, help="No progress bar, no summary.")
@click.option(
    "--resampler",
    type=click.Choice(RESAMPLERS),
    default="kaiser_fast",
    show_default=True,
    help="Sample-rate conversion: BirdNET-Analyzer's own (kaiser_fast) or libsoxr (soxr).",
)
def replay_command(
    paths,
    model_names,
    models_dir,
    window,
    hop,
    crop_stride,
    sensitivity,
    min_conf,
    top_k,
    formats,
    out,
    channel,
    zone,
    threads,
    join_gap,
    time_expansion,
    workers,
    fresh,
    ray_address,
    quiet,
    species,
    resampler,
):
    """Analyse recordings (files or folders) and write their detections."""
    logs.configure()
    try:
        naive_zone = ZoneInfo(known_zone(zone))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--timezone") from error
    options = ReplayOptions.build(
        window=window,
        hop=hop,
        crop_stride=crop_stride,
        sensitivity=sensitivity,
        min_conf=min_conf,
        top_k=top_k,
        channel=channel,
        naive_zone=naive_zone,
        threads=threads,
        join_gap=join_gap,
        time_expansion=time_expansion,
        formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
        species=species,
        resampler=resampler,
    )
    console = Console(stderr=True)
    progress = not quiet and console.is_terminal
    try:
        pool = ray_pool(ray_address) if ray_address is not None else None
        if pool is None:
            workers = workers or os.cpu_count() or 1
        result = replay(list(paths), models_dir, list(model_names), out, options, workers, fresh, progress, pool=pool)
    except (ModelError, ValueError, ConnectionError) as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        Console(stderr=True).print(
            f"interrupted: the recordings done so far are kept in {out}/; the same command goes on from there",
            soft_wrap=True,
        )
        sys.exit(130)
    if not quiet:
        print_summary(result, out)
    if result.failed and len(result.failed) == result.recordings:
        sys.exit(1)


def ray_pool(address: str):
    """Ray actors on the cluster at `address` as the pool (`--workers` None: one per CPU of the cluster)."""
    try:
        import_ray()
    except RuntimeError as error:
        raise click.UsageError(str(error)) from error
    return partial(RayWorkers, address)


def print_summary(result, out: Path) -> None:
    console = Console()
    done_before = f", {result.skipped} of them done by an earlier replay" if result.skipped else ""
    table = Table(title=f"{result.summary.detections} detections in {result.recordings} recording(s){done_before}")
    for column in ("species", "scientific name", "detections", "max confidence"):
        table.add_column(column, justify="right" if column in ("detections", "max confidence") else "left")
    for tally in result.summary.ranked():
        table.add_row(tally.common_name, tally.scientific_name, str(tally.count), f"{tally.max_confidence:.3f}")
    console.print(table)
    if result.species_weeks:
        dated = [str(week) for week in result.species_weeks if week != YEAR_ROUND]
        parts = [f"week {', '.join(dated)} of 48"] if dated else []
        if YEAR_ROUND in result.species_weeks:
            parts.append("the whole year (recordings of unknown date)")
        console.print(f"range filter: the species expected in {' and '.join(parts)}")
    for stream_id, error in result.failed:
        console.print(f"[red]skipped[/red] {stream_id}: {error}")
    for stream_id, error in result.damaged:
        console.print(f"[yellow]damaged[/yellow] {stream_id}: {error}")
    if result.skipped == result.recordings:
        console.print("nothing left to analyse: every recording was done by an earlier replay")
    elif result.wall_seconds > 0:
        speed = result.audio_seconds / result.wall_seconds
        console.print(
            f"analysed {hours(result.audio_seconds)} of audio in {hours(result.wall_seconds)}: {speed:.0f}x real time"
        )
    if quarantined := result.states.get("quarantined"):
        console.print(f"[red]{quarantined} recording(s) quarantined[/red] in {out}/{LEDGER_NAME}: not analysed again")
    console.print(f"detections written to {out}/")


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds:.1f} s"
