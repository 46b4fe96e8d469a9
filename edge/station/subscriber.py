"""The station's MQTT session: persistent, so that the broker queues the boxes' records while the station is
off; every record committed to the store before it is acknowledged; reconnection with back-off.

All of paho runs on the thread that calls `run`: the callbacks, the store's writes, the acknowledgements.
"""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.station.clips import ClipArchive, head, parse_clip
from edge.station.messages import CLIPS, Record, RecordError, parse, topic_box, topic_parts
from edge.station.store import MAX_TOPIC, Store
from edge.wire.mqtt import Backoff, BrokerConfig, new_client, protocols, refusal, refused_version, version_name
from edge.wire.records import iso

log = structlog.get_logger(__name__)

# How long the broker keeps the session (and queues records) while the station is away: a station closed for
# the off-season still gets everything when it comes back, within the broker's own queue limits.
SESSION_EXPIRY_S = 30 * 24 * 3600
LOOP_S = 0.5  # how often the loop looks at the stop event
# Larger messages the broker drops instead of sending (MQTT 5; brokers accept up to 256 MB): a message held
# in memory whole must not take the station's memory, nor come back after every restart. Records stop at
# messages.MAX_PAYLOAD_BYTES, clips at clips.MAX_MESSAGE_BYTES (4 MiB of audio); what lies between is received
# and rejected, so that it is counted.
MAX_PACKET_BYTES = 16 * 1024 * 1024
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: a client with the same id connected
SHORT_LINK_S = 10.0  # a link lost this soon after it was accepted is a short one
SHORT_LINKS = 3  # short links in a row that suggest another client under the same id


def default_client_id(db_path: Path | None = None) -> str:
    """edge-station-<host>-<database>: the same from run to run, and another for a second station (another
    database) on the same host, which would otherwise take the first one's session over and back, forever."""
    suffix = f"-{hashlib.sha256(str(db_path.resolve()).encode()).hexdigest()[:8]}" if db_path else ""
    return f"edge-station-{socket.gethostname()}{suffix}"


@dataclass(frozen=True)
class StationOptions:
    """The station's side of the session: the topic prefix, a client id that stays the same from one run to the
    next (the broker keeps the session under it), and the reconnect back-off in seconds."""

    prefix: str = "edge"
    client_id: str = field(default_factory=default_client_id)
    first_retry_s: float = 1.0
    max_retry_s: float = 60.0

    @property
    def topic_filter(self) -> str:
        return f"{self.prefix}/+/#"


class Subscriber:
    """Receives every box's records into `store` until stopped; `subscribed` is set once the broker confirms
    the subscription. `on_stored(record, new)` is called after each commit (new: not a duplicate). Clips go
    to `clips` (a station without one rejects them)."""

    def __init__(
        self,
        config: BrokerConfig,
        options: StationOptions,
        store: Store,
        on_stored: Callable[[Record, bool], None] | None = None,
        clips: ClipArchive | None = None,
    ):
        self.config, self.options, self.store = config, options, store
        self.clips = clips
        self.on_stored = on_stored
        self.subscribed = threading.Event()
        self._protocols = protocols(config)
        self._backoff = Backoff(options.first_retry_s, options.max_retry_s)
        self._refused = None
        self._accepted = False
        self._store_failed = False
        self._had_session = False
        self._connected_at = 0.0
        self._short_links = 0

    def run(self, stop: threading.Event) -> None:
        """Connects, receives, and reconnects after a pause whenever the link is lost, until `stop` is set.
        OSError or ValueError for a password file or certificate that cannot be read."""
        while not stop.is_set():
            self._connection(stop)
            if self._accepted and not self._store_failed:
                self._backoff.reset()  # the link was good: the next attempt comes soon
            if self._refused is not None and refused_version(self._refused) and len(self._protocols) > 1:
                self._protocols.pop(0)
                log.info("broker_protocol_fallback", protocol="3.1.1")
                continue
            if self._refused is not None:
                log.error("broker_refused", reason=refusal(self._refused), client_id=self.options.client_id)
            if not stop.is_set():
                delay = self._backoff.next_delay()
                log.info("broker_retry", seconds=round(delay, 1))
                stop.wait(delay)

    def _connection(self, stop: threading.Event) -> None:
        """One connection, from connect to its loss (or to `stop`)."""
        protocol = self._protocols[0]
        client = self._client(protocol)
        self._refused, self._accepted, self._store_failed = None, False, False
        host, port = self.config.address
        clean_start: mqtt.CleanStartOption = mqtt.MQTT_CLEAN_START_FIRST_ONLY  # paho's default; MQTT 3 allows no other
        properties = None
        if protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            properties.MaximumPacketSize = MAX_PACKET_BYTES
            clean_start = False
        try:
            client.connect(host, port, self.config.keepalive, clean_start=clean_start, properties=properties)
        except OSError as error:
            log.warning("broker_unreachable", host=host, port=port, error=str(error))
            return
        while not stop.is_set() and client.loop(timeout=LOOP_S) == mqtt.MQTT_ERR_SUCCESS:
            if self.clips is not None and not self._store_failed:
                self._prune_clips(client)
        self.subscribed.clear()
        if stop.is_set():
            client.disconnect()  # a clean DISCONNECT: the broker keeps the session for SESSION_EXPIRY_S

    def _client(self, protocol: mqtt.MQTTProtocolVersion) -> mqtt.Client:
        # A 3.1.1 session that is not clean: the broker keeps our queue while the station is off.
        client = new_client(self.config, self.options.client_id, protocol, clean_session=False)
        # Acknowledged only once committed: a record the store could not take comes again.
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self._refused = reason
            return
        self._accepted = True
        self._connected_at = time.monotonic()
        log.info(
            "broker_connected",
            host=self.config.address[0],
            port=self.config.address[1],
            protocol=version_name(client.protocol),
            session_present=flags.session_present,
        )
        if self._had_session and not flags.session_present:
            log.warning("broker_session_lost", note="records published while the station was away are lost")
        self._had_session = True
        # Subscribing again to a kept session would make the broker send the retained statuses again, possibly
        # behind newer ones still queued; MQTT 5 can ask for them only when the subscription is new.
        if client.protocol == mqtt.MQTTv5:
            client.subscribe(self.options.topic_filter, options=SubscribeOptions(qos=1, retainHandling=1))
        elif not flags.session_present:
            client.subscribe(self.options.topic_filter, qos=1)
        else:
            self._subscription_confirmed()

    def _on_subscribe(self, client: mqtt.Client, userdata, mid, reason_codes, properties) -> None:
        failed = [code for code in reason_codes if code.is_failure]
        if failed:
            log.error("subscription_refused", topic=self.options.topic_filter, reason=str(failed[0]))
            client.disconnect()
            return
        self._subscription_confirmed()

    def _subscription_confirmed(self) -> None:
        log.info("station_subscribed", topic=self.options.topic_filter, client_id=self.options.client_id)
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata, message: mqtt.MQTTMessage) -> None:
        """Stores the record and acknowledges it; acknowledges a message that is no record too, once set aside
        (it could never be stored, and the broker would send it for ever). Nothing one message holds may stop
        the station: only a database that cannot be written leaves a valid record unacknowledged, to come
        again."""
        if self._store_failed:
            return  # disconnecting: unacknowledged, it comes again
        received_utc = iso(datetime.now(UTC))
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "(a topic that is not UTF-8)"
        payload = bytes(message.payload)  # paho types it bytes | bytearray
        stored = None
        try:
            if not payload and topic.endswith("/status"):
                # How a retained status is removed (`mosquitto_pub -r -n`, a box taken out of service): no record.
                log.info("retained_status_cleared", topic=topic[:MAX_TOPIC])
                client.ack(message.mid, message.qos)
                return
            box, kind = topic_parts(topic, self.options.prefix)
            if kind == CLIPS:
                self._add_clip(box, payload, received_utc)
            else:
                record = parse(box, kind, payload, received_utc, bool(message.retain))
                stored = record, self.store.add(record)
        except RecordError as error:
            self._reject(topic, payload, str(error), received_utc)
        except (sqlite3.Error, OSError) as error:  # OSError: a clip's file that cannot be written
            log.error("record_not_stored", topic=topic[:MAX_TOPIC], error=str(error))
            self._store_failed = True
            client.disconnect()
            return
        except Exception as error:  # a gap in the checks: this message is set aside, the others go on
            log.exception("record_failed", topic=topic[:MAX_TOPIC])
            bug = f"station error {type(error).__name__}: {str(error)[:200]}"
            self._reject(topic, payload, bug, received_utc)
        client.ack(message.mid, message.qos)
        if stored is not None and self.on_stored is not None:
            self.on_stored(*stored)

    def _add_clip(self, box: str, payload: bytes, received_utc: str) -> None:
        if self.clips is None:
            raise RecordError("this station keeps no clips")
        clip = parse_clip(box, payload, received_utc)
        new = self.clips.add(clip)
        m = clip.metadata
        log.info(
            "clip_stored" if new else "clip_duplicate",
            box=box,
            id=clip.id,
            kind=m["kind"],
            species=m["common_name"],
            bytes=len(clip.audio),
            refused=m["refused"],
        )

    def _prune_clips(self, client: mqtt.Client) -> None:
        assert self.clips is not None
        try:
            self.clips.prune_due()
        except sqlite3.Error as error:  # as for a record: the database is not writable, the link is let go
            log.error("clips_not_pruned", error=str(error))
            self._store_failed = True
            client.disconnect()

    def _reject(self, topic: str, payload: bytes, reason: str, received_utc: str) -> None:
        box = topic_box(topic, self.options.prefix)
        clip = topic.endswith(f"/{CLIPS}")
        event = "clip_rejected" if clip else "record_rejected"
        log.warning(event, box=box, topic=topic[:MAX_TOPIC], reason=reason, size=len(payload))
        try:
            self.store.reject(box, topic, reason, head(payload) if clip else payload, received_utc, len(payload))
        except sqlite3.Error as error:  # the reason is in the log; the message is no record to wait for
            log.error("rejection_not_stored", topic=topic[:MAX_TOPIC], error=str(error))

    def _on_disconnect(self, client: mqtt.Client, userdata, flags, reason, properties) -> None:
        if not reason.is_failure or self._refused is not None:  # a refusal is told by run()
            return
        # A broker hands the session to a newer client with the same id: MQTT 5 brokers may say so (reason
        # 0x8E), mosquitto 2.0 just closes the link. Links that drop within seconds of being accepted, time after
        # time, are what two stations under one client id look like.
        short = self._accepted and time.monotonic() - self._connected_at < SHORT_LINK_S
        self._short_links = self._short_links + 1 if short else 0
        if getattr(reason, "value", None) == SESSION_TAKEN_OVER or self._short_links >= SHORT_LINKS:
            self._accepted = False  # no quick return: the back-off grows while the two take turns
            log.error(
                "session_taken_over",
                client_id=self.options.client_id,
                reason=str(reason),
                error=f"the broker gave this station's session to another client (or dropped the link "
                f"{self._short_links} times right after accepting it): is a second station using "
                f"client id {self.options.client_id!r}? Give each station its own --client-id",
            )
        else:
            log.warning("broker_disconnected", reason=str(reason))
