"""`edge station`: the subscriber on a thread of its own, and on the main thread either the live table or
nothing but waiting (the records are then logged one line each)."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import structlog
from rich.console import Console
from rich.live import Live

from edge.app import logs
from edge.station import table
from edge.station.clips import MAX_AGE_DAYS, MAX_MEGABYTES, ClipArchive, default_folder
from edge.station.identify import Identifier, IdentifyOptions
from edge.station.messages import Record
from edge.station.notify import Notifier
from edge.station.store import Store, connect
from edge.station.subscriber import StationOptions, Subscriber
from edge.station.web.server import WebServer
from edge.station.web.site import HttpSettings, Site
from edge.wire.mqtt import BrokerConfig

log = structlog.get_logger(__name__)

REFRESH_S = 1.0


def broker_address(text: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT, [V6ADDRESS] or [V6ADDRESS]:PORT. ValueError for a port that is not a number."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or None
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None
    return host, int(port) if port else None


def run(
    config: BrokerConfig,
    options: StationOptions,
    db_path: Path,
    stop: threading.Event,
    show_table: bool,
    clip_folder: Path | None = None,
    clip_max_age_days: float | None = MAX_AGE_DAYS,
    clip_max_megabytes: float | None = MAX_MEGABYTES,
    http: HttpSettings | None = None,
    identify: IdentifyOptions | None = None,
    notifier: Notifier | None = None,
) -> int:
    """Until `stop` is set; the exit code: 1 when the subscriber or the web server failed (a certificate or
    password file that cannot be read...), else 0. StoreError when the database cannot be opened, OSError when
    the pages' address cannot be bound. Clips go to `clip_folder` (default: `clips` beside the database), kept
    by age and total size. With `http.address`, the pages are served too, with the models of `identify`
    (default: the bundled BirdNET, loaded at the first identification) behind /api/identify. Each new alert
    goes to `notifier`."""
    store = Store.open(db_path)
    clips = ClipArchive(store, clip_folder or default_folder(db_path), clip_max_age_days, clip_max_megabytes)
    clips.remove_temporary()
    failed = threading.Event()
    web = None
    if http is not None and http.address:
        try:
            identifier = Identifier(identify or IdentifyOptions())
            services: dict[str, object] = {"identifier": identifier}
            if notifier is not None:
                services["notifier"] = notifier
            site = Site(db_path, clips.folder, http, services=services)
            web = WebServer(site, http.address, on_failure=failed)
        except OSError:
            store.close()
            raise

    def stored(record: Record, new: bool) -> None:
        if not show_table:
            log_stored(record, new)
        if new and notifier is not None and record.kind == "alerts":
            notifier.alert(record)

    subscriber = Subscriber(config, options, store, on_stored=stored, clips=clips)

    def network() -> None:
        try:
            subscriber.run(stop)
        except Exception:  # whatever ends the subscriber ends the station, with an exit code systemd sees
            log.exception("station_failed")
            failed.set()
        finally:
            stop.set()

    thread = threading.Thread(target=network, name="mqtt")
    log.info(
        "station_started",
        db=str(db_path),
        broker=f"{config.address[0]}:{config.address[1]}",
        client_id=options.client_id,
        topic=options.topic_filter,
        clips=str(clips.folder),
    )
    if notifier is not None:
        notifier.start()
    thread.start()
    if web is not None:
        web.start()
    try:
        if show_table:
            live_table(db_path, stop, failed)
        else:
            while not stop.wait(REFRESH_S) and not failed.is_set():
                pass
    finally:
        stop.set()
        if web is not None:
            web.stop()
        thread.join()
        if notifier is not None:
            notifier.stop()
        store.close()
    log.info("station_stopped")
    return 1 if failed.is_set() else 0


def live_table(db_path: Path, stop: threading.Event, failed: threading.Event) -> None:
    db = connect(db_path, read_only=True)
    try:
        with Live(console=Console(), auto_refresh=False) as live:
            # Live redirects stderr while it runs: warnings set up now are printed above the table.
            logs.configure(level="warning", stream=sys.stderr)
            while True:
                now = datetime.now(UTC)
                live.update(table.render(table.box_lines(db, now), now), refresh=True)
                if stop.wait(REFRESH_S) or failed.is_set():
                    return
    finally:
        db.close()


def log_stored(record: Record, new: bool) -> None:
    p = record.payload
    if not new:
        log.debug("record_duplicate", box=record.box, kind=record.kind, key=record.key, seq=record.seq)
    elif record.kind in ("events", "alerts"):
        log.info(
            "event_stored" if record.kind == "events" else "alert_stored",
            box=record.box,
            seq=record.seq,
            id=p["id"],
            phase=p["kind"],
            species=p.get("common_name"),
            confidence=p.get("confidence"),
            end_s=p["end_s"],
        )
    elif record.kind == "health":
        log.info(
            "health_stored",
            box=record.box,
            seq=record.seq,
            time_utc=p["time_utc"],
            real_time_factor=p.get("real_time_factor"),
            outbox_pending=p.get("outbox_pending"),
        )
    else:
        log.info("status_stored", box=record.box, state=p["state"], time_utc=p.get("time_utc"))
