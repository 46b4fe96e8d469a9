"""The uplink: a thread that sends the outbox to the broker, QoS 1, and forgets a record only at its PUBACK.

One paho client per connection, driven by this thread's own loop (paho's built-in reconnect has no jitter and
its in-memory resend would duplicate ours). After each (re)connect the outbox as it stands is the backlog,
sent oldest first; records added since are live and may use every free slot, while the backlog never takes
more than three quarters of them, so a week of backlog does not hold back a gunshot alert. Every record
carries the box's `seq`, so a subscriber can restore the order.

The retained status topic says `online` on connect, `offline` (the last will) when the box vanishes, and
`stopped` after a clean shutdown; each says where the box is, when its configuration gives its position.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import Field, field_validator

from edge.sinks.clip_queue import QueuedClip
from edge.sinks.clip_sender import ClipSender
from edge.sinks.outbox import Outbox
from edge.wire.mqtt import (
    Backoff,
    BrokerConfig,
    new_client,
    prefix_problem,
    protocols,
    refusal,
    refused_version,
    topic,
    version_name,
)
from edge.wire.records import status_payload

log = structlog.get_logger(__name__)

LOOP_SECONDS = 0.1


class MqttConfig(BrokerConfig):
    prefix: str = Field("edge", description="First level(s) of every topic: <prefix>/<box>/<kind>.")
    client_id: str | None = Field(None, description="MQTT client id (default edge-<box_id>).")
    max_inflight: int = Field(20, ge=1, le=1000, description="Records sent and not yet acknowledged.")
    reconnect_min_seconds: float = Field(1.0, gt=0, le=3600, description="First reconnect delay; doubles per failure.")
    reconnect_max_seconds: float = Field(300.0, gt=0, le=86400, description="Longest reconnect delay.")
    drain_seconds: float = Field(
        5.0, ge=0, le=60, description="On a clean stop, time allowed to send what is pending before disconnecting."
    )

    @field_validator("prefix")
    @classmethod
    def prefix_is_topic_levels(cls, value: str) -> str:
        if problem := prefix_problem(value):  # a wildcard or an extra level: records no station receives
            raise ValueError(problem)
        return value


@dataclass
class Connection:
    """What one connection knows: its CONNACK, what is in flight, how far each lane has been sent."""

    connack: ReasonCode | None = None
    lost: bool = False
    inflight: dict[int, tuple[int, bool]] = field(default_factory=dict)  # mid -> (seq, from the backlog)
    acked: list[int] = field(default_factory=list)
    backlog_end: int = 0
    backlog_cursor: int = 0
    live_cursor: int = 0
    backlog_done: bool = False
    freed: bool = True  # slots came free (or the connection is new): look for live records
    status_acked: bool = False
    status_mid: int | None = None
    clip_inflight: dict[int, QueuedClip] = field(default_factory=dict)  # mid -> the clip (one at a time)


class MqttPublisher:
    def __init__(
        self,
        config: MqttConfig,
        box: str,
        outbox: Outbox,
        clips: ClipSender | None = None,
        place: tuple[float, float] | None = None,
    ):
        """`place`: the box's (latitude, longitude), told in every status; None for a box without a position."""
        self.config = config
        self.box = box
        self.place = place
        self.outbox = outbox
        self.clips = clips
        self.client_id = config.client_id or f"edge-{box}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.sent = 0
        self.connects = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A record was added to the outbox."""
        self._wake.set()

    def stop(self) -> None:
        """Send what is pending for up to drain_seconds, say `stopped`, disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.config.drain_seconds + 10)
        if self.clips is not None:
            self.clips.queue.close()

    def stats(self) -> dict:
        return {
            "mqtt_connected": self.connected,
            "mqtt_sent": self.sent,
            "mqtt_connects": self.connects,
            "mqtt_last_error": self.last_error,
            **(self.clips.queue.stats() if self.clips is not None else {}),
        }

    def _topic(self, kind: str) -> str:
        return topic(self.config.prefix, self.box, kind)

    def _run(self) -> None:
        backoff = Backoff(self.config.reconnect_min_seconds, self.config.reconnect_max_seconds)
        versions = protocols(self.config)
        while not self._stop.is_set():
            try:
                outcome = self._session(versions[0], backoff)
            except Exception as error:  # a bug or a full disk must not silence the uplink for good
                log.exception("mqtt_session_failed")
                self.connected, self.last_error, outcome = False, f"{type(error).__name__}: {error}", "lost"
            if outcome == "version" and len(versions) > 1:
                versions.pop(0)
                continue  # the same broker, at once, in the older version
            if outcome == "stopped":
                return
            delay = backoff.next_delay()
            log.info("mqtt_reconnect_wait", seconds=round(delay, 2), pending=self.outbox.pending_count)
            self._stop.wait(delay)

    def _session(self, protocol: mqtt.MQTTProtocolVersion, backoff: Backoff) -> str:
        """Connect, send until the link is lost or we are stopped; "stopped", "lost", "refused" or "version"."""
        host, port = self.config.address
        state = Connection()
        try:
            client = new_client(self.config, self.client_id, protocol)
            client.will_set(self._topic("status"), status_payload(self.box, "offline", self.place), qos=1, retain=True)
            client.max_inflight_messages_set(self.config.max_inflight)
            self._callbacks(client, state)
            client.connect(host, port, keepalive=self.config.keepalive)
        except (OSError, ValueError) as error:  # refused, unreachable, TLS failure, unreadable credentials
            self._failed("mqtt_connect_failed", f"{type(error).__name__}: {error}", host=host, port=port)
            return "lost"
        connack = self._await_connack(client, state)
        if connack is None:
            client.disconnect()
            return "stopped" if self._stop.is_set() else "lost"
        if connack.is_failure:
            client.disconnect()
            self._failed("mqtt_refused", refusal(connack), host=host, port=port, version=version_name(protocol))
            return "version" if refused_version(connack) else "refused"
        backoff.reset()
        self.connected, self.last_error = True, None
        self.connects += 1
        state.backlog_end = state.live_cursor = self.outbox.newest()
        log.info(
            "mqtt_connected", host=host, port=port, version=version_name(protocol), backlog=self.outbox.pending_count
        )
        client.publish(self._topic("status"), status_payload(self.box, "online", self.place), qos=1, retain=True)
        try:
            return self._send(client, state)
        finally:
            self.connected = False

    def _callbacks(self, client: mqtt.Client, state: Connection) -> None:
        def on_connect(client, userdata, flags, reason_code, properties):
            state.connack = reason_code

        def on_disconnect(client, userdata, flags, reason_code, properties):
            state.lost = True

        def on_publish(client, userdata, mid, reason_code, properties):
            if mid == state.status_mid:
                state.status_acked = True
            clip = state.clip_inflight.pop(mid, None)
            if clip is not None and self.clips is not None:
                state.freed = True
                if reason_code.is_failure:  # kept, tried again on the next connection
                    self._failed("mqtt_publish_refused", str(reason_code), clip=clip.id)
                else:
                    self.clips.queue.acknowledge(clip)
                    log.info("clip_sent", id=clip.id, kind=clip.kind, bytes=clip.bytes)
            entry = state.inflight.pop(mid, None)
            if entry is None:
                return
            state.freed = True
            if reason_code.is_failure:  # e.g. not authorized to publish there: kept, tried on the next connection
                self._failed("mqtt_publish_refused", str(reason_code), seq=entry[0])
            else:
                state.acked.append(entry[0])

        client.on_connect, client.on_disconnect, client.on_publish = on_connect, on_disconnect, on_publish

    def _await_connack(self, client: mqtt.Client, state: Connection) -> ReasonCode | None:
        """The broker's answer, or None when none came; a stop in the meantime still lets it come, within
        drain_seconds, so that a short replay ending while the connection is being set up still delivers."""
        deadline = time.monotonic() + self.config.keepalive
        while state.connack is None and not state.lost:
            if self._stop.is_set():
                deadline = min(deadline, time.monotonic() + self.config.drain_seconds)
            if client.loop(LOOP_SECONDS) != mqtt.MQTT_ERR_SUCCESS or time.monotonic() > deadline:
                break
        if state.connack is None:
            self._failed("mqtt_connect_failed", "the broker closed the connection or did not answer (no CONNACK)")
        return state.connack

    def _send(self, client: mqtt.Client, state: Connection) -> str:
        while not state.lost:
            if self._stop.is_set():
                return self._drain(client, state)
            self._fill(client, state)
            self._fill_clip(client, state)
            rc = client.loop(LOOP_SECONDS)
            self._settle(state)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                state.lost = True
        self._settle(state)
        self._failed("mqtt_connection_lost", "the link to the broker dropped", in_flight=len(state.inflight))
        return "lost"

    def _fill(self, client: mqtt.Client, state: Connection) -> None:
        """Send what fits in the free slots: live records first, then the backlog, oldest first."""
        look = self._wake.is_set() or state.freed
        self._wake.clear()
        state.freed = False
        free = self.config.max_inflight - len(state.inflight)
        if free <= 0:
            return
        if look:
            for record in self.outbox.pending(state.live_cursor, free):
                self._publish(client, state, record, backlog=False)
                state.live_cursor = record.seq
        if state.backlog_done:
            return
        backlog_slots = max(1, self.config.max_inflight * 3 // 4)
        room = min(
            self.config.max_inflight - len(state.inflight),
            backlog_slots - sum(1 for _, from_backlog in state.inflight.values() if from_backlog),
        )
        if room <= 0:
            return
        records = self.outbox.pending(state.backlog_cursor, room, upto=state.backlog_end)
        for record in records:
            self._publish(client, state, record, backlog=True)
            state.backlog_cursor = record.seq
        state.backlog_done = len(records) < room

    def _fill_clip(self, client: mqtt.Client, state: Connection) -> None:
        """One clip at a time, and only when no record waits or is in flight: records never wait behind a clip
        longer than the one being sent."""
        if self.clips is None or state.clip_inflight or state.inflight or self.outbox.pending_count:
            return
        ready = self.clips.next_message()
        if ready is not None:
            clip, payload = ready
            state.clip_inflight[client.publish(self._topic("clips"), payload, qos=1).mid] = clip

    def _publish(self, client: mqtt.Client, state: Connection, record, backlog: bool) -> None:
        info = client.publish(self._topic(record.kind), record.payload, qos=1)
        state.inflight[info.mid] = (record.seq, backlog)

    def _settle(self, state: Connection) -> None:
        if state.acked:
            self.outbox.acknowledge(state.acked)
            self.sent += len(state.acked)
            state.acked = []

    def _drain(self, client: mqtt.Client, state: Connection) -> str:
        deadline = time.monotonic() + self.config.drain_seconds
        while not state.lost and time.monotonic() < deadline:
            self._wake.set()
            self._fill(client, state)
            client.loop(LOOP_SECONDS)
            self._settle(state)
            if not state.inflight and self.outbox.pending_count == 0:
                break
        if not state.lost:
            final = status_payload(
                self.box, "stopped", self.place, outbox_pending=self.outbox.pending_count, mqtt_sent=self.sent
            )
            state.status_mid = client.publish(self._topic("status"), final, qos=1, retain=True).mid
            deadline = time.monotonic() + 2
            while not state.status_acked and not state.lost and time.monotonic() < deadline:
                client.loop(LOOP_SECONDS)
            self._settle(state)
            client.disconnect()
        log.info("mqtt_stopped", pending=self.outbox.pending_count)
        return "stopped"

    def _failed(self, event: str, error: str, **context) -> None:
        self.last_error = error
        log.warning(event, error=error, **context)
