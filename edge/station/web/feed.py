"""What the live pages wait on: one poller per web server reads where the station's tables are (a query of
four max(rowid)) every POLL_S while someone is listening, and wakes every listener when it moves. Each
listener then reads only what changed for it. The MQTT thread writes the database from another thread (and
the database may be written by another process): polling it is what sees every writer, at the cost of POLL_S.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from edge.station import alerts
from edge.station.alerts import Cursor
from edge.station.store import StoreError
from edge.station.web.site import Site

log = structlog.get_logger(__name__)

POLL_S = 0.3


class Feed:
    """Started by its first listener in the server's event loop, stopped when the last one leaves or the site
    stops (then every listener is woken, to end its stream)."""

    def __init__(self, site: Site, poll_s: float = POLL_S):
        self.site, self.poll_s = site, poll_s
        self.now: Cursor | None = None
        self.listeners = 0
        self._moved = asyncio.Event()
        self._task: asyncio.Task | None = None

    def read(self) -> Cursor:
        """Where the tables are now (sqlite3.Error, StoreError when the database cannot be read)."""
        with self.site.read() as db:
            return alerts.cursor(db)

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        self.listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())
        try:
            yield
        finally:
            self.listeners -= 1

    async def wait(self, seen: Cursor, timeout: float) -> Cursor | None:
        """The tables' cursor as soon as it differs from `seen`; None after `timeout` or when the site stops."""
        moved = self._moved
        if self.now is not None and self.now != seen:
            return self.now
        try:
            await asyncio.wait_for(moved.wait(), timeout)
        except TimeoutError:
            return None
        return self.now if self.now != seen and not self.site.stopping.is_set() else None

    async def _poll(self) -> None:
        while self.listeners and not self.site.stopping.is_set():
            now: Cursor | None
            try:
                now = await asyncio.to_thread(self.read)
            except (sqlite3.Error, StoreError) as error:  # busy for longer than the timeout, or gone: try again
                log.warning("feed_read_failed", error=str(error))
                now = self.now
            if now != self.now:
                self.now = now
                self._wake()
            await asyncio.sleep(self.poll_s)
        self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
