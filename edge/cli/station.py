"""`edge station`: the ranger station, and `edge station export`, its database as CSV."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from edge.app import logs
from edge.cli.models import models_dir_option


@click.group(name="station", invoke_without_command=True)
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
@click.option(
    "--clips-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_default="clips beside the --db file",
    help="Folder of the clips the boxes send (FLAC files, one folder per box and UTC day).",
)
@click.option(
    "--clip-max-age-days",
    type=click.FloatRange(min=0),
    default=90.0,
    show_default=True,
    help="Delete a clip's file this many days after it arrived (0: never).",
)
@click.option(
    "--clip-max-mb",
    type=click.FloatRange(min=0),
    default=2000.0,
    show_default=True,
    help="Delete the oldest clips' files while the clip folder holds more megabytes than this (0: no limit).",
)
@click.option(
    "--http",
    "http_address",
    metavar="HOST:PORT",
    default=None,
    help="Also serve the web pages on this address (127.0.0.1:8080 for this machine only); overrides [http] address.",
)
@click.option(
    "--anonymous",
    type=click.Choice(["guest", "none"]),
    default=None,
    show_default="[http] anonymous, else guest",
    help="What visitors who have not signed in may do on the pages: look, listen and identify (guest), or nothing.",
)
@models_dir_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML file of the station's settings: [http], [notify] (see config/station.toml).",
)
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
    clips_dir,
    clip_max_age_days,
    clip_max_mb,
    http_address,
    anonymous,
    models_dir,
    config_path,
) -> None:
    """Ranger station: keep every box's records in a SQLite database and show the boxes (until Ctrl-C)."""
    import signal
    import threading

    from pydantic import ValidationError

    from edge.station.app import broker_address, run
    from edge.station.identify import IdentifyOptions
    from edge.station.notify import Notifier
    from edge.station.settings import SettingsError, StationSettings, load_settings
    from edge.station.store import StoreError
    from edge.station.subscriber import StationOptions, default_client_id
    from edge.station.web.site import listen_address
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
    if http_address is not None:
        try:
            listen_address(http_address)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--http") from None
    try:
        settings = load_settings(config_path) if config_path else StationSettings()
    except SettingsError as error:
        raise click.BadParameter(str(error), param_hint="--config") from None
    # The options, where given, over the file.
    http = settings.http.model_copy(
        update={"address": http_address or settings.http.address, "anonymous": anonymous or settings.http.anonymous}
    )
    show_table = not no_table and sys.stdout.isatty()
    logs.configure(json=not sys.stdout.isatty(), stream=sys.stdout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    options = StationOptions(prefix=prefix, client_id=client_id or default_client_id(db_path))
    notifier = Notifier(settings.notify) if settings.notify.urls else None
    try:
        code = run(
            config,
            options,
            db_path,
            stop,
            show_table,
            clips_dir,
            clip_max_age_days or None,
            clip_max_mb or None,
            http,
            IdentifyOptions(models_dir=models_dir),
            notifier=notifier,
        )
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"cannot serve the pages on {http.address}: {error.strerror or error}") from error
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
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Only this UTC day (YYYY-MM-DD).")
@click.option("--records", is_flag=True, help="Every stored record (JSON payload) instead of one row per event.")
@click.option(
    "--clips",
    "clips_out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the clips (FLAC files and an index.csv) into this folder instead.",
)
@click.option(
    "--clips-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_default="clips beside the --db file",
    help="The station's clip folder.",
)
def station_export(
    db_path: Path, out: str, box: str | None, since, day, records: bool, clips_out: Path | None, clips_dir: Path | None
) -> None:
    """Write the detection events (or all records, or the clips) of a station's database."""
    from edge.station.clips import default_folder
    from edge.station.export import write_clips, write_events, write_records
    from edge.station.store import StoreError, connect

    try:
        db = connect(db_path, read_only=True)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    write = write_records if records else write_events
    first = since.date() if since else None
    only = day.date() if day else None
    try:
        if clips_out is not None:
            count = write_clips(db, clips_dir or default_folder(db_path), clips_out, box, first, only)
            out = str(clips_out)
        elif out == "-":
            count = write(db, sys.stdout, box, first, only)
        else:
            with open(out, "w", newline="", encoding="utf-8") as file:
                count = write(db, file, box, first, only)
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error}") from error
    finally:
        db.close()
    if out != "-":
        click.echo(f"{count} rows written to {out}", err=True)


@station_group.group(name="users")
def users_group() -> None:
    """Who may sign in to the station's pages: rangers review and acknowledge, guests only look."""


db_option = click.option(
    "--db",
    "db_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The station's SQLite database (created if absent).",
)


@contextmanager
def users_transaction(db_path: Path) -> Iterator[sqlite3.Connection]:
    """The station's database (created or migrated as the station would) in one transaction, for changing its
    users; a database that cannot be opened is a usage error naming it."""
    from edge.station.store import Store, StoreError

    try:
        store = Store.open(db_path)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    try:
        with store.transaction():
            yield store.db
    finally:
        store.close()


@users_group.command(name="add")
@click.argument("name")
@db_option
@click.option("--role", type=click.Choice(["admin", "ranger", "guest"]), default="ranger", show_default=True)
@click.option(
    "--password-file",
    type=click.File("r"),
    default=None,
    help="Read the password from this file's first line (- for standard input) instead of asking for it.",
)
@click.option("--replace", is_flag=True, help="Set a new password and role for a user who exists (signs them out).")
def users_add(name: str, db_path: Path, role: str, password_file, replace: bool) -> None:
    """Add a user NAME who signs in with a password."""
    from edge.station.users import add_user

    if password_file is not None:
        password = password_file.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with users_transaction(db_path) as db:
            add_user(db, name, role, password, replace)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{name}: {role}", err=True)


@users_group.command(name="remove")
@click.argument("name")
@db_option
def users_remove(name: str, db_path: Path) -> None:
    """Remove the user NAME and end their sessions."""
    from edge.station.users import remove_user

    with users_transaction(db_path) as db:
        removed = remove_user(db, name)
    if not removed:
        raise click.ClickException(f"no user {name!r}")


@users_group.command(name="list")
@db_option
def users_list(db_path: Path) -> None:
    """The users and their roles."""
    from edge.station.store import StoreError, connect

    try:
        db = connect(db_path, read_only=True)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    try:
        for row in db.execute("SELECT name, role, created_utc FROM users ORDER BY name"):
            click.echo(f"{row['name']}\t{row['role']}\t{row['created_utc']}")
    finally:
        db.close()
