"""`edge run`, the field daemon, and `edge config check`, which validates its configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import structlog

from edge.app import logs
from edge.cli.types import FiniteRange
from edge.inference.manifest import ModelError


@click.command(name="run")
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


@click.group(name="config")
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
