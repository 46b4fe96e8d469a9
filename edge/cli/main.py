"""The `edge` command."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import structlog
from rich.console import Console
from rich.table import Table

from edge.app import logs
from edge.app.model_folders import model_folders
from edge.app.replay import ReplayOptions, replay
from edge.app.sections import DEFAULT_MODEL
from edge.audio.resample import RESAMPLERS
from edge.audio.windower import WindowSpec
from edge.cli.species import species_command, species_filter_options
from edge.cli.types import FiniteRange, GapOrOff
from edge.events.detector import DetectorOptions
from edge.inference.manifest import ModelError, cpu_features, default_models_dir, discover
from edge.inference.member import MemberOptions
from edge.screen.range_model import YEAR_ROUND
from edge.sinks.files import FORMATS
from edge.sources.files import known_zone

models_dir_option = click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_models_dir,
    envvar="EDGE_MODELS_DIR",
    show_default="models/ of this checkout",
    help="Folder holding one directory per model.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edge")
def main() -> None:
    """edge: identify wildlife and threats in field recordings with ONNX models on the CPU."""


main.add_command(species_command)


@main.command(name="replay")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    "model_names",
    multiple=True,
    default=[DEFAULT_MODEL],
    show_default=True,
    help="Model to run (repeat for an ensemble).",
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
    help="Folder for the detection files (rewritten by each replay).",
)
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
        formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
        species=species,
        resampler=resampler,
    )
    console = Console(stderr=True)
    try:
        result = replay(
            list(paths), models_dir, list(model_names), out, options, progress=not quiet and console.is_terminal
        )
    except (ModelError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    if not quiet:
        print_summary(result, out)
    if result.failed and len(result.failed) == result.recordings:
        sys.exit(1)


def print_summary(result, out: Path) -> None:
    console = Console()
    table = Table(
        title=f"{result.summary.detections} detections in {result.recordings} recording(s), "
        f"{result.audio_seconds:.1f} s of audio"
    )
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
    console.print(f"detections written to {out}/")


@main.command(name="models")
@models_dir_option
def models_command(models_dir: Path) -> None:
    """List every bundled model folder and check each file's sha256."""
    try:
        folders = model_folders(models_dir)
        classifiers = discover(models_dir)
    except ModelError as error:
        raise click.ClickException(str(error)) from error
    table = Table(title=f"models in {models_dir}")
    for column in ("name", "kind", "version", "licence", "holds", "size", "sha256"):
        table.add_column(column)
    problems = []
    for folder in folders:
        found = folder.problems()
        problems += found
        table.add_row(
            folder.name,
            folder.kind,
            folder.version,
            folder.licence,
            folder.detail,
            f"{folder.size / 1e6:.1f} MB",
            "MISMATCH" if found else "ok",
        )
    console = Console(width=140)
    console.print(table)
    # Below the table, where no column width can cut a feature name; a missing feature slows a model, no more.
    for m in (m for m in classifiers if m.tuned_for):
        console.print(
            f"{m.name}: {m.precision}, tuned for {', '.join(m.tuned_for)}; "
            f"{int8_verdict(m, cpu_features(), platform.machine())}",
            highlight=False,
        )
    for problem in problems:
        console.print(problem, highlight=False, soft_wrap=True)
    if problems:
        raise click.ClickException(f"{len(problems)} model file(s) missing or not matching their manifest's sha256")


def int8_verdict(manifest, features: frozenset[str] | None, machine: str) -> str:
    """What this CPU means for a quantized model's speed. On Arm the x86 flags it was tuned on say nothing:
    INT8 kernels are fast there with the dot-product instructions (Armv8.2 asimddp: a Raspberry Pi 5 has
    them, a Pi 4 does not)."""
    if features is None:
        return "this system does not say which it has (no /proc/cpuinfo)"
    if machine.lower().startswith(("aarch64", "arm")) or "asimd" in features:
        if "asimddp" in features:
            return "on Arm what matters is the dot-product instructions (asimddp): this CPU has them"
        return (
            "on Arm what matters is the dot-product instructions (asimddp): this CPU lacks them (as a "
            "Raspberry Pi 4): it runs, but no faster than FP32"
        )
    if missing := manifest.missing_features(features):
        return f"this CPU lacks {', '.join(missing)}: it runs, but slower than measured"
    return "this CPU has them all"


@main.command(name="run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    envvar="EDGE_CONFIG",
    help="The daemon's TOML configuration (e.g. /etc/edge/edge.toml).",
)
@click.option(
    "--replay",
    "replay_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Replay these recordings (files or folders) instead of the configured source, then exit.",
)
@click.option("--realtime", is_flag=True, help="With --replay: deliver audio at 1x real time, as a microphone.")
@click.option(
    "--speed",
    type=FiniteRange(min=0, min_open=True),
    default=None,
    help="With --replay: deliver audio at this multiple of real time (implies --realtime).",
)
def run_command(config_path: Path, replay_paths, realtime: bool, speed: float | None) -> None:
    """Run the field daemon: analyse the configured source until stopped (SIGTERM), reload on SIGHUP."""
    import signal

    from edge.app.daemon import Daemon
    from edge.app.notify import Notifier
    from edge.app.preflight import problems, storage_warnings
    from edge.app.settings import SettingsError, load_settings
    from edge.sources.files import AudioError, ReplayConfig
    from edge.sources.microphone import MicrophoneError

    logs.configure(json=True, stream=sys.stdout)
    try:
        settings = load_settings(config_path)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    if replay_paths:
        pace = speed or (1.0 if realtime else None)
        settings = settings.model_copy(update={"source": ReplayConfig(paths=list(replay_paths), speed=pace)})
    elif realtime or speed:
        raise click.UsageError("--realtime and --speed go with --replay")
    refuse_on(problems(settings, verify=False), config_path)  # loading the models verifies them
    logs.configure(json=True, level=settings.log_level, stream=sys.stdout)
    for warning in storage_warnings(settings):
        structlog.get_logger(__name__).warning("storage_not_writable", problem=warning)
    daemon = Daemon(settings, config_path, Notifier.from_environ())
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop_requested.set())
    signal.signal(signal.SIGHUP, lambda *_: daemon.reload_requested.set())
    try:
        daemon.start()
    except (ModelError, ValueError, OSError, AudioError, MicrophoneError) as error:
        raise click.ClickException(f"cannot start: {error}") from error
    try:
        daemon.run()
    except OSError as error:  # records cannot be written (a full or failing card): systemd restarts us later
        raise click.ClickException(f"stopped: {error}") from error
    finally:
        daemon.stop()


def refuse_on(problems: list[str], config_path: Path) -> None:
    """Stop with every problem a configuration has on this machine, each naming its option."""
    if problems:
        raise click.ClickException(
            f"{config_path}: {len(problems)} problem(s) on this machine:\n  " + "\n  ".join(problems)
        )


@main.group(name="config")
def config_group() -> None:
    """Work with the daemon's configuration file."""


@config_group.command(name="check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def config_check(path: Path) -> None:
    """Validate a configuration file (and EDGE_ variables) without starting anything."""
    from edge.app.preflight import problems, storage_warnings
    from edge.app.settings import SettingsError, load_settings

    try:
        settings = load_settings(path)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    refuse_on(problems(settings), path)
    for warning in storage_warnings(settings):  # the daemon starts all the same and reports the storage fault
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"{path}: valid; source {settings.source.type}, models {', '.join(settings.model.names)}, "
        f"data in {settings.data_dir}"
    )


@main.group(name="station", invoke_without_command=True)
@click.option("--broker", metavar="HOST[:PORT]", help="The broker the boxes publish to.")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite database of the station (created if absent).",
)
@click.option("--prefix", default="edge", show_default=True, help="Topic prefix of the boxes.")
@click.option(
    "--client-id",
    default=None,
    show_default="edge-station-<hostname>-<hash of the --db path>",
    help="MQTT client id: the broker keeps the station's queue under it, so keep it from run to run.",
)
@click.option("--username", default=None, help="User name, if the broker asks for one.")
@click.option(
    "--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File holding the password."
)
@click.option("--tls", is_flag=True, help="TLS with the system's CAs (implied by --ca-file).")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CA certificate(s) that signed the broker's certificate.",
)
@click.option(
    "--cert-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Client certificate, for brokers that require one.",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Private key of the client certificate.",
)
@click.option(
    "--protocol",
    type=click.Choice(["auto", "5", "3.1.1"]),
    default="auto",
    show_default=True,
    help="MQTT version; auto tries 5, then 3.1.1.",
)
@click.option("--no-table", is_flag=True, help="Log one line per record instead of the live table.")
@click.pass_context
def station_group(
    ctx,
    broker,
    db_path,
    prefix,
    client_id,
    username,
    password_file,
    tls,
    ca_file,
    cert_file,
    key_file,
    protocol,
    no_table,
) -> None:
    """Ranger station: keep every box's records in a SQLite database and show the boxes (until Ctrl-C)."""
    import signal
    import threading

    from pydantic import ValidationError

    from edge.station.app import broker_address, run
    from edge.station.store import StoreError
    from edge.station.subscriber import StationOptions, default_client_id
    from edge.wire.mqtt import BrokerConfig, prefix_problem

    if ctx.invoked_subcommand is not None:
        return
    if broker is None or db_path is None:
        raise click.UsageError("--broker and --db are required (or a command: edge station export --help)")
    if problem := prefix_problem(prefix):
        raise click.BadParameter(problem, param_hint="--prefix")
    try:
        host, port = broker_address(broker)
        config = BrokerConfig(
            host=host,
            port=port,
            protocol=protocol,
            username=username,
            password_file=password_file,
            tls=tls,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )
    except ValidationError as error:  # its own text would echo every option given
        wrong = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in error.errors())
        raise click.BadParameter(wrong, param_hint="--broker and its options") from None  # not chained: same reason
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--broker") from error
    if problem := prefix_problem(prefix):
        raise click.BadParameter(problem, param_hint="--prefix")
    if problem := config.secret_problem():
        raise click.BadParameter(problem, param_hint="--password-file")
    show_table = not no_table and sys.stdout.isatty()
    logs.configure(json=not sys.stdout.isatty(), stream=sys.stdout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    options = StationOptions(prefix=prefix, client_id=client_id or default_client_id(db_path))
    try:
        code = run(config, options, db_path, stop, show_table)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    sys.exit(code)


@station_group.command(name="export")
@click.option(
    "--db",
    "db_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The station's SQLite database.",
)
@click.option("--out", default="-", show_default=True, help="CSV file to write, or - for standard output.")
@click.option("--box", default=None, help="Only this box.")
@click.option(
    "--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Only from this UTC day on (YYYY-MM-DD)."
)
@click.option("--records", is_flag=True, help="Every stored record (JSON payload) instead of one row per event.")
def station_export(db_path: Path, out: str, box: str | None, since, records: bool) -> None:
    """Write the detection events (or all records) of a station's database as CSV."""
    from edge.station.export import write_events, write_records
    from edge.station.store import StoreError, connect

    try:
        db = connect(db_path, read_only=True)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    write = write_records if records else write_events
    day = since.date() if since else None
    try:
        if out == "-":
            count = write(db, sys.stdout, box, day)
        else:
            with open(out, "w", newline="", encoding="utf-8") as file:
                count = write(db, file, box, day)
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error}") from error
    finally:
        db.close()
    if out != "-":
        click.echo(f"{count} rows written to {out}", err=True)
