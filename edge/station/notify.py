"""Alerts pushed to the rangers' phones and chats through Apprise (ntfy, Telegram, e-mail, Matrix and more).

The station's MQTT thread hands each new alert record to `Notifier.alert`, which decides at once (an alert not
notified before, of a class wanted, its box and class not notified within the interval, fewer than
max_per_interval notified within it over all boxes) and queues the message; a thread of the notifier's own sends
it, so that a slow or failing service never holds up the records. The URLs carry tokens: the logs name them by
position, scheme and (when it is no secret) host.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable

import apprise
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from edge.station.messages import Record
from edge.station.notice import Notice, RateLimit, TotalLimit, alert_class, alert_time, compose

log = structlog.get_logger(__name__)

QUEUE = 100  # notices waiting to be sent; beyond, new ones are dropped and counted
REMEMBERED = 10_000  # alert ids remembered, so that an alert delivered again is not notified again
# A service that does not connect, or does not answer, within this many seconds is given up (a URL's own cto=
# and rto= may shorten it, not lengthen it).
SOCKET_TIMEOUT_S = 15.0
LOOK_S = 0.5  # how often the sending thread looks at the stop event
STOP_S = 10.0  # how long stop() waits for a notice being sent


def service(url: str) -> apprise.NotifyBase | None:
    """The Apprise service of `url` (None when Apprise knows no service for it), set up to send plain text on
    the calling thread, given up after SOCKET_TIMEOUT_S."""
    asset = apprise.AppriseAsset(
        app_id="edge station",
        app_desc="Alerts from the field boxes",
        interpret_emojis=False,  # ":gun:" in a class name stays text
        # On the caller's thread, bounded by the socket timeouts: Apprise's own pool and time limit would
        # leave a hung call running in a thread that the interpreter waits for at exit, holding the station's
        # stop for as long as the service hangs.
        async_mode=False,
        service_timeout=0,
    )
    plugin = apprise.Apprise.instantiate(url, asset=asset)
    if plugin is not None:
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, SOCKET_TIMEOUT_S)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, SOCKET_TIMEOUT_S)
    return plugin


class NotifySettings(BaseModel):
    """[notify]: where alerts are pushed, and how often."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    urls: list[SecretStr] = Field(
        default_factory=list,
        max_length=32,
        description="Apprise URLs (ntfys://ntfy.sh/TOPIC, tgram://BOT_TOKEN/CHAT_ID, mailtos://..., "
        "json://HOST/PATH); none: no notifications.",
    )
    min_interval_s: float = Field(
        600.0,
        ge=0,
        le=7 * 24 * 3600,
        description="Per box and alert class, at most one notification in this many seconds; the alerts held "
        "back are counted in the next one.",
    )
    max_per_interval: int = Field(
        10,
        ge=1,
        le=10_000,
        description="At most this many notifications in any min_interval_s over all boxes and classes together "
        "(a publisher making up box or class names cannot flood the phones); the alerts held back are counted in "
        "the next one.",
    )
    page_url: str | None = Field(
        None,
        max_length=2000,
        description="The station's web address as the rangers reach it, for a link to the alert.",
    )
    classes: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Alert classes to notify (any case); none: every class.",
    )

    @field_validator("urls")
    @classmethod
    def known_services(cls, urls: list[SecretStr]) -> list[SecretStr]:
        for number, url in enumerate(urls, 1):
            if service(url.get_secret_value()) is None:
                raise ValueError(
                    f"url #{number} is no URL of a service Apprise knows (its scheme, or its form for that "
                    f"service: `apprise --details` lists them)"
                )
        return urls

    @field_validator("page_url")
    @classmethod
    def web_address(cls, url: str | None) -> str | None:
        if url is not None and (not url.startswith(("http://", "https://")) or not url.isprintable() or " " in url):
            raise ValueError("is not an http:// or https:// address without spaces")
        return url


def label(number: int, url: str, service: apprise.NotifyBase) -> str:
    """How the logs name a URL: `url #2 (json://127.0.0.1)`, the host only when Apprise does not hide it (for
    some services the host is the token: tgram://BOT_TOKEN/...)."""
    scheme = url.partition("://")[0].lower()
    host = getattr(service, "host", None)
    shown = f"://{host}" if host and host in service.url(privacy=True) else ""
    return f"url #{number} ({scheme}{shown})"


class Notifier:
    """Sends a notice of each new alert record to every URL of `settings`, from a thread of its own started by
    `start()` and joined by `stop()`. `clock` (monotonic seconds) times the rate limit."""

    def __init__(self, settings: NotifySettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.services: list[tuple[str, apprise.Apprise]] = []
        for number, url in enumerate(settings.urls, 1):
            text = url.get_secret_value()
            plugin = service(text)
            if plugin is None:
                raise ValueError(f"url #{number} is no URL of a service Apprise knows")
            self.services.append((label(number, text, plugin), apprise.Apprise(plugin, asset=plugin.asset)))
        self.classes = {name.casefold() for name in settings.classes}
        self.limit = RateLimit(settings.min_interval_s)
        self.total = TotalLimit(settings.max_per_interval, settings.min_interval_s)
        self.dropped = 0  # notices a full queue refused
        self._queue: queue.Queue[Notice] = queue.Queue(maxsize=QUEUE)
        self._seen: set[tuple[str, str]] = set()
        self._order: deque[tuple[str, str]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._send_queued, name="notify", daemon=True)
        self._thread.start()
        log.info(
            "notify_started",
            urls=[name for name, _ in self.services],
            min_interval_s=self.limit.interval,
            max_per_interval=self.total.count,
        )

    def stop(self) -> None:
        """Stops after the notice being sent, if any (waiting at most STOP_S); those still queued are not sent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_S)
        if self._queue.qsize() or (self._thread is not None and self._thread.is_alive()):
            log.warning("notify_unsent", queued=self._queue.qsize())

    def alert(self, record: Record) -> None:
        """Queues the notice of a new alert record: called on the station's MQTT thread, it never blocks and
        never raises."""
        try:
            self._offer(record)
        except Exception:  # a gap in what the record was checked for must not stop the station
            log.exception("notify_failed", box=record.box, kind=record.kind, key=record.key)

    def _offer(self, record: Record) -> None:
        if record.kind != "alerts":
            return
        name, alert_id = alert_class(record), record.payload["id"]
        if self.classes and name.casefold() not in self.classes:
            return
        if not self._first_time((record.box, alert_id)):
            log.debug("notify_duplicate", box=record.box, alert_class=name, id=alert_id)
            return
        heard, key, now = alert_time(record), (record.box, name), self.clock()
        if self.limit.due(key, now) and self.total.full(now):
            held = self.total.hold(heard)
            log.info("notify_held_total", box=record.box, alert_class=name, id=alert_id, held=held)
            return
        let = self.limit.offer(key, now, heard)
        if let is None:
            log.info("notify_held", box=record.box, alert_class=name, id=alert_id, held=self.limit.held(key))
            return
        others, others_since = self.total.let(now)
        notice = compose(record, *let, page_url=self.settings.page_url, others=others, others_since=others_since)
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            self.dropped += 1
            log.warning("notify_dropped", box=record.box, alert_class=name, id=alert_id, dropped=self.dropped)

    def _first_time(self, key: tuple[str, str]) -> bool:
        """True the first time an alert (box and id) is seen; the latest REMEMBERED are remembered."""
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > REMEMBERED:
            self._seen.discard(self._order.popleft())
        return True

    def _send_queued(self) -> None:
        while not self._stop.is_set():
            try:
                notice = self._queue.get(timeout=LOOK_S)
            except queue.Empty:
                continue
            self.send(notice)

    def send(self, notice: Notice) -> None:
        """Sends `notice` to every URL in turn; a failure is logged and the next URL tried."""
        for name, target in self.services:
            if self._stop.is_set():
                return
            context = {"box": notice.box, "alert_class": notice.alert_class, "id": notice.id, "url": name}
            try:
                result = target.notify(
                    body=notice.body,
                    title=notice.title,
                    notify_type=apprise.NotifyType.WARNING,
                    body_format=apprise.NotifyFormat.TEXT,
                )
            except Exception as error:  # its text may quote the URL, token and all: only its type is told
                log.warning("notify_failed", **context, reason=type(error).__name__)
                continue
            if result:
                log.info("notify_sent", **context)
            else:  # FAILURE or TIMEOUT; what the service answered is in Apprise's own log, masked
                log.warning("notify_failed", **context, reason=getattr(result.status, "name", "failed").lower())
