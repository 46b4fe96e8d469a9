"""`edge run`: the long-running service. One place builds the pipeline from settings and owns its threads.

source ─AudioChunk─▶ Pipeline (edge.pipeline, with the smoother as its events stage) ─Event, Alert─▶ outputs
                                                                           (daily files, outbox ─▶ MQTT)

What it is made of is built in `wiring`; the Daemon keeps the threads, the health record and the reload.
The loop runs in the main thread; the source's own thread (folder watcher, audio callback) only hands it
work, and the uplink's thread only reads the outbox. Signals set flags that the loop reads between chunks:
SIGTERM/SIGINT stop, SIGHUP reloads.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog

from edge.app import logs
from edge.app.health import Health
from edge.app.latency import Latencies
from edge.app.notify import Notifier
from edge.app.preflight import alert_problems
from edge.app.settings import Settings, SettingsError, load_settings
from edge.app.wiring import (
    build_ensemble,
    build_guard,
    build_outputs,
    build_pipeline,
    build_source,
    build_species,
    store_paths,
)
from edge.inference.manifest import ModelError
from edge.inference.stages import Stages
from edge.screen.alerts import AlertGate
from edge.screen.species import SpeciesListError
from edge.sinks.clip_queue import ClipKind, QueuedClip
from edge.sources.state import RecordingState
from edge.types import Alert, AudioChunk, Call, ClipSettled, Event
from edge.wire.clips import clip_metadata
from edge.wire.records import alert_record, event_record, record_key

log = structlog.get_logger(__name__)

# Sections SIGHUP applies at once (the species lists and thresholds file are read again even when the
# configuration is unchanged); a change anywhere else is logged as needing a restart.
RELOADABLE = ("smoothing", "health", "log_level", "species", "alerts")


class Daemon:
    def __init__(self, settings: Settings, config_path: Path, notifier: Notifier):
        self.settings = settings
        self.config_path = config_path
        self.notifier = notifier
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.health = Health(settings.box_id, settings.data_dir, store_paths(settings))
        self.stages = Stages()
        self.latencies = Latencies()
        self._next_health = 0.0

    def start(self) -> None:
        """Load the models, open the state and the outputs, start the source; then tell systemd we are ready."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        self.ensemble = build_ensemble(s, self.stages)
        self.pipeline, self.smoother = build_pipeline(s, self.ensemble, self.stages)
        self.outputs = build_outputs(s)
        self.outputs.start()
        self.state = RecordingState(s.state_path)
        self.source = build_source(s, self.state)
        self.guard = build_guard(s, self.ensemble, self.source.live)
        self.source.start()
        log.info(
            "daemon_ready",
            box=s.box_id,
            models=self.ensemble.name,
            source=s.source.type,
            load_seconds=round(time.monotonic() - began, 2),
            data_dir=str(s.data_dir),
            cpu_budget=s.budget.cpu_budget,
            load_levels=len(self.guard.loads),
        )
        self._next_health = time.monotonic() + s.health.interval_seconds
        self.notifier.ready()
        self.notifier.status(f"analysing {s.source.type} input with {self.ensemble.name}")

    def run(self) -> None:
        """The loop: until stopped (or a replay ends), then flush everything."""
        chunks = self.source.chunks(self.stop_requested)
        try:
            for chunk in chunks:
                if chunk is not None:
                    self._publish(chunk, self.pipeline.push(chunk, self.guard.load))
                    self._account(chunk)
                self._tick()
        finally:
            chunks.close()  # a failed output leaves the recording in flight to the next start, uncounted
        log.info(
            "loop_ended",
            stop_requested=self.stop_requested.is_set(),
            audio_seconds=round(self.health.audio_seconds, 1),
            events=self.health.events,
        )
        self.publish_health()  # the last word: totals (alerts, speech, clips) up to the stop

    def stop(self) -> None:
        """Stop the source's threads and close what is open, in reverse order of `start`."""
        self.notifier.stopping()
        self.source.stop()
        self.pipeline.clips.close()
        self.state.close()
        self.outputs.stop()
        log.info("daemon_stopped")

    def _publish(self, chunk: AudioChunk, records: list[Event | Alert | ClipSettled | Call]) -> None:
        """The chunk's alerts and events, in order, to the outputs, and its clips to the uplink; then its counts
        and latencies."""
        windows = self.pipeline.windows
        first = self.health.windows == 0 and windows
        self.health.audio_seconds += chunk.seconds
        self.health.windows += len(windows)
        if records:
            with self.stages.measure("publish", items=len(records)):
                for record in records:
                    if isinstance(record, Call):
                        continue  # a call detector's calls reach the events through the windows' scores
                    if isinstance(record, Alert):
                        self._publish_alert(record)
                    elif isinstance(record, ClipSettled):
                        self._offer_clip(record)
                    else:
                        self._publish_event(record)
        if first:  # cold start: from the process's start to its first scored window
            log.info("first_result", seconds=round(time.time() - self.health.process.create_time(), 2))
        self.latencies.record(chunk, windows, time.monotonic())

    def _account(self, chunk: AudioChunk) -> None:
        """The chunk's cost goes to the budget guard, then the members the schedule held off (the next
        chunk is measured with them); live input is steered, file input paced."""
        lag = None if chunk.received is None else time.monotonic() - chunk.received
        self.guard.account(chunk.seconds, lag)
        self.guard.hold_off(self.ensemble.held_off)
        if not self.guard.live:
            self.guard.pace(self.stop_requested)

    def _publish_alert(self, alert: Alert) -> None:
        record = alert_record(alert, self.settings.box_id, detected=datetime.now(UTC))
        self.outputs.publish("alerts", record, record_key(record))
        log.warning(
            "alert",
            alert_class=alert.alert_class,
            confidence=record["confidence"],
            source=record["source"],
            start_s=record["start_s"],
            start_utc=record["start_utc"],
            held_back=alert.held_back,
            id=alert.id,
        )

    def _publish_event(self, event: Event) -> None:
        record = event_record(event, self.settings.box_id)
        self.outputs.publish("events", record, record_key(record))
        self.health.events += 1
        log.info(
            "detection_event",
            kind=event.kind,
            species=event.label.scientific_name,
            confidence=record["confidence"],
            source=event.stream.id,
            start_s=record["start_s"],
            id=event.id,
        )

    def _offer_clip(self, clip: ClipSettled) -> None:
        """A clip written or refused, for the station; one not made (a full card) has nothing to send."""
        size = 0
        if clip.path is not None:
            try:
                size = (self.settings.clips_dir / clip.path).stat().st_size
            except OSError:  # pruned already: nothing to send
                return
        elif clip.refused is None:
            return
        metadata = clip_metadata(clip, self.settings.box_id)
        kind: ClipKind = "alert" if clip.alert_class is not None else "event"
        queued = QueuedClip(clip.subject.id, kind, clip.path, metadata, size)
        self.outputs.offer_clip(queued, clip.subject.label.names)

    def _tick(self) -> None:
        self.notifier.watchdog()
        self.outputs.retry()  # records held for a failed store, written once its disk takes them (throttled)
        if self.reload_requested.is_set():
            self.reload_requested.clear()
            self._reload()
        if time.monotonic() >= self._next_health:
            self._next_health = time.monotonic() + self.settings.health.interval_seconds
            self.publish_health()

    def publish_health(self) -> None:
        clips = self.pipeline.clips
        clips.prune()
        self.state.save()  # what a failing disk refused, if it takes it now
        outputs = self.outputs.stats()
        faults = [f.as_record() for f in (self.state.fault, clips.fault) if f]
        extra = {
            "suppressed_by_cooldown": self.smoother.suppressed,
            **outputs,
            **self.guard.stats(),
            **self.latencies.summary(),
            "member_ms_per_crop": self._member_costs(),
            **self.pipeline.screen.stats(),
            **clips.stats(),
            "storage_faults": outputs["storage_faults"] + faults,
        }
        record = self.outputs.publish("health", self.health.record(self.source.stats(), extra))
        fields = {k: v for k, v in record.items() if k not in ("schema", "box")}
        if record["storage_faults"]:
            log.error("health_storage_fault", **fields)
        elif (record["disk_free_percent"] or 0) < self.settings.health.min_free_percent:
            log.warning("disk_low", **fields)
        elif record["outbox_full"]:
            log.error("outbox_full", **fields)
        else:
            log.info("health", **fields)
        rtf = record["real_time_factor"]
        uplink = {None: "", True: ", uplink up", False: f", uplink down ({record['outbox_pending']} waiting)"}
        self.notifier.status(
            f"{record['audio_seconds'] / 3600:.2f} h of audio analysed, "
            f"real-time factor {rtf if rtf is not None else '-'}, {record['events']} events"
            f"{uplink[record['mqtt_connected']]}"
        )

    def _member_costs(self) -> dict[str, float]:
        """CPU milliseconds per crop of each member since start (its session run alone)."""
        costs = {}
        for name, cost in self.stages.costs.items():
            if name.startswith("member:") and cost.items:
                costs[name.removeprefix("member:")] = round(1000 * cost.cpu / cost.items, 2)
        return costs

    def _reload(self) -> None:
        self.notifier.reloading()
        try:
            new = load_settings(self.config_path)
        except SettingsError as error:
            log.error("reload_failed", error=str(error))
            self.notifier.ready()
            return
        old = self.settings
        labels = self.ensemble.taxonomy.labels
        try:  # the lists and the thresholds file are read again even when the configuration is unchanged
            if unknown := alert_problems(new, labels):  # as at start: a typo must not silence an alert
                raise ValueError("; ".join(unknown))
            alerts = AlertGate(new.alerts.options(), labels)
            species = build_species(new, labels, alerts, self.pipeline.screen.species.range_model)
        except (SpeciesListError, ModelError, ValueError, OSError) as error:
            log.error("reload_failed", error=str(error))
            self.notifier.ready()
            return
        changed = [name for name in Settings.model_fields if getattr(new, name) != getattr(old, name)]
        self.smoother.reconfigure(new.smoothing.options(), species.thresholds)
        self.pipeline.reload(alerts, species)
        logs.configure(json=True, level=new.log_level, stream=sys.stdout)
        self.settings = old.model_copy(update={name: getattr(new, name) for name in RELOADABLE})
        if self.outputs.uplink is not None:  # a box moved: the station hears of it at the next connection
            self.outputs.uplink.place = self.settings.species.options().place
        needs_restart = [name for name in changed if name not in RELOADABLE]
        log.info("config_reloaded", applied=[n for n in changed if n in RELOADABLE], needs_restart=needs_restart)
        self.notifier.ready()
