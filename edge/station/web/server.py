"""The station's pages served by uvicorn on a thread of the station process, beside the MQTT thread.

The socket is bound before the thread starts, so that an address in use or not allowed stops the station at
once with the reason, rather than leaving it running without its pages."""

from __future__ import annotations

import socket
import threading
import time

import structlog
import uvicorn

from edge.station.web.app import create_app
from edge.station.web.site import Site, listen_address

log = structlog.get_logger(__name__)

GRACE_S = 3  # open streams (the live alerts) get this long to end when the station stops


class WebServer:
    """`start()` serves until `stop()`; `port` is the one bound (useful with port 0). A server that fails sets
    `failed` and `on_failure` (the station's stop: a station without its pages is not what was asked for)."""

    def __init__(self, site: Site, address: str, on_failure: threading.Event | None = None):
        self.site = site
        self.on_failure = on_failure
        host, port = listen_address(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without it a reused
        # connection waits 40 ms for the delayed ACK of the answer's first segment
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError:
            self.socket.close()
            raise
        self.host, self.port = host, self.socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(site),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACE_S,
            server_header=False,
            # The client's address is the socket's: a reverse proxy's X-Forwarded-For would let anyone who
            # reaches the port choose the address trusted_proxies is checked against.
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self.failed = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Returns once the pages are served (or the server failed: `failed`)."""
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            time.sleep(0.01)
        if not self.server.started:
            return
        log.info("web_started", url=self.url, anonymous=self.site.settings.anonymous)
        if self.host not in ("127.0.0.1", "::1", "localhost") and self.site.settings.anonymous == "guest":
            log.warning(
                "web_open_to_guests",
                url=self.url,
                note="anyone who reaches this address sees the boxes, alerts and clips: put it behind a TLS proxy "
                'and set [http] anonymous = "none" unless that is meant',
            )

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        except BaseException:  # SystemExit too: uvicorn exits on a failed start
            log.exception("web_failed")
            self.failed.set()
            if self.on_failure is not None:
                self.on_failure.set()

    def stop(self) -> None:
        self.site.stopping.set()
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(GRACE_S + 5)
        self.socket.close()
        log.info("web_stopped")
