"""systemd's notification protocol (sd_notify): readiness, status line, watchdog keep-alives, reload and stop.

The protocol is one datagram of newline-separated `KEY=value` lines sent to the unix socket named by
NOTIFY_SOCKET; systemd documents it as the stable interface, so it is written here rather than taken from a
binding to libsystemd. Outside systemd (no NOTIFY_SOCKET) every method does nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Tells systemd how the service is doing. Every method is safe to call at any time: a failed send is
    logged once and never raised, so a broken notification socket cannot take the daemon down with it."""

    def __init__(
        self, address: str | None, watchdog_interval: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """`address`: NOTIFY_SOCKET as systemd sets it (a path, or "@name" for the abstract namespace), None
        to do nothing; `watchdog_interval`: seconds within which systemd expects a keep-alive, None if it
        expects none; `clock`: monotonic seconds, for the watchdog's rate limit."""
        self._address = address
        self._watchdog_interval = watchdog_interval
        self._clock = clock
        self._last_watchdog: float | None = None
        self._failed = False

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] = os.environ, clock: Callable[[], float] = time.monotonic
    ) -> Notifier:
        return cls(environ.get("NOTIFY_SOCKET") or None, _watchdog_interval(environ), clock)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds after which systemd deems the service hung without a keep-alive, or None."""
        return self._watchdog_interval

    def ready(self) -> None:
        """Start-up (or a reload) is complete: models are loaded and audio flows."""
        self._send("READY=1")

    def status(self, text: str) -> None:
        """A one-line status shown by `systemctl status`."""
        self._send("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> None:
        """Keep-alive, cheap enough to call on every loop iteration: sends at most once per half interval."""
        if self._address is None or self._watchdog_interval is None:
            return
        now = self._clock()
        if self._last_watchdog is not None and now - self._last_watchdog < self._watchdog_interval / 2:
            return
        if self._send("WATCHDOG=1"):
            self._last_watchdog = now

    def reloading(self) -> None:
        """Configuration is being reloaded; call ready() when done. Type=notify-reload (systemd 253 and later)
        needs the time of the request on CLOCK_MONOTONIC; Type=notify ignores it."""
        now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={now_us}")

    def stopping(self) -> None:
        """Shutdown has begun."""
        self._send("STOPPING=1")

    def _send(self, message: str) -> bool:
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never stall the audio loop: if systemd is not draining its socket, the send fails instead.
                sock.setblocking(False)
                sock.sendto(message.encode(), _socket_address(self._address))
        except (OSError, ValueError) as error:
            if not self._failed:
                self._failed = True
                log.warning(
                    "systemd_notify_failed", socket=self._address, message=message.split("\n")[0], error=str(error)
                )
            return False
        return True


def _socket_address(address: str) -> str:
    if address.startswith("@"):
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    raise ValueError(f"unsupported NOTIFY_SOCKET address {address!r}")


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """WATCHDOG_USEC in seconds, if the watchdog is meant for this process (WATCHDOG_PID, when set, is ours)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        pid = int(environ.get("WATCHDOG_PID") or os.getpid())
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 and pid == os.getpid() else None
