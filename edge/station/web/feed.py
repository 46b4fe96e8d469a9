"""What the live pages wait on: one poller per web server reads where the station's tables are (a query of
four max(rowid)) every POLL_S while someone is listening; when they moved, it reads what changed once, as the
events a reader is sent, and wakes every listener to send those same events. A reader that is behind (it
resumed from an older Last-Event-ID, or was slow to send) reads its own catch-up, shared with any other reader
behind by as much, then goes on with the shared events. The MQTT thread writes the database from another
thread (and the database may be written by another process): polling it is what sees every writer, at the
cost of POLL_S.

The streams are limited, overall and per client address, so that readers cannot take all the process's file
descriptors: `StreamPlaces`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from edge.station import alerts
from edge.station.alerts import Cursor
from edge.station.store import StoreError
from edge.station.web.site import Site

log = structlog.get_logger(__name__)

POLL_S = 0.3
KEPT = 32  # changes kept for readers that are behind by one or a few


@dataclass(frozen=True)
class Change:
    """What a reader at `since` is sent to be at `until`: server-sent events, the last one with `until` as id."""

    since: Cursor
    until: Cursor
    events: str


# The events telling a reader what changed between two cursors, read on the connection given.
Describe = Callable[[sqlite3.Connection, Cursor, Cursor], str]


class Feed:
    """Started by its first listener in the server's event loop, stopped when the last one leaves or the site
    stops (then every listener is woken, to end its stream)."""

    def __init__(self, site: Site, describe: Describe, poll_s: float = POLL_S):
        self.site, self.describe, self.poll_s = site, describe, poll_s
        self.now: Cursor | None = None
        self.listeners = 0
        self._changes: OrderedDict[Cursor, Change] = OrderedDict()  # by `since`, the latest KEPT
        self._reading: dict[tuple[Cursor, Cursor], asyncio.Future[Change]] = {}
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

    async def next(self, seen: Cursor, timeout: float) -> Change | None:
        """What brings a reader from `seen` (a cursor of this database) to where the tables are, as soon as they
        have moved past it; None after `timeout` or when the site stops. Raises sqlite3.Error or StoreError when
        a catch-up cannot be read."""
        moved = self._moved
        if self.site.stopping.is_set():
            return None
        now = self._past(seen)
        if now is None:  # also a page drawn after the last poll, ahead of the feed: it waits for the feed
            try:
                await asyncio.wait_for(moved.wait(), timeout)
            except TimeoutError:
                return None
            now = self._past(seen)
            if now is None or self.site.stopping.is_set():
                return None
        return await self._since(seen, now)

    def _past(self, seen: Cursor) -> Cursor | None:
        """Where the tables are, if that is past `seen`."""
        now = self.now
        return now if now is not None and now != seen and now.covers(seen) else None

    async def _since(self, seen: Cursor, now: Cursor) -> Change:
        """The changes kept from `seen` on, joined up to `now`; where they stop short, a catch-up to `now`."""
        chain: list[Change] = []
        at = seen
        while at != now and (change := self._changes.get(at)) and now.covers(change.until) and len(chain) < KEPT:
            chain.append(change)
            at = change.until
        if at != now:
            chain.append(await self._between(at, now))
        return Change(seen, now, "".join(change.events for change in chain))

    async def _between(self, since: Cursor, until: Cursor) -> Change:
        """What changed between two cursors, read once for every reader that asks at the same time."""
        key = (since, until)
        reading = self._reading.get(key)
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(asyncio.to_thread(self._describe, since, until))

            def done(future: asyncio.Future[Change]) -> None:
                # Kept in the same step as the read is let go: a reader that comes in between finds one or the
                # other, never neither (it would read the same again).
                del self._reading[key]
                if not future.cancelled() and future.exception() is None:  # heard, even with no reader left
                    self._keep(future.result())

            reading.add_done_callback(done)
        return await asyncio.shield(reading)  # a reader that leaves does not end the others' read

    def _keep(self, change: Change) -> None:
        self._changes[change.since] = change
        self._changes.move_to_end(change.since)
        while len(self._changes) > KEPT:
            self._changes.popitem(last=False)

    def _describe(self, since: Cursor, until: Cursor) -> Change:
        with self.site.read() as db:
            return Change(since, until, self.describe(db, since, until))

    async def _poll(self) -> None:
        while self.listeners and not self.site.stopping.is_set():
            now: Cursor | None
            try:
                now = await asyncio.to_thread(self.read)
                if self.now is not None and now != self.now:
                    await self._between(self.now, now)  # before the listeners wake: they all find it
            except (sqlite3.Error, StoreError) as error:  # busy for longer than the timeout, or gone: try again
                log.warning("feed_read_failed", error=str(error))
                now = self.now
            if now != self.now:
                self.now = now
                self._wake()
            await asyncio.sleep(self.poll_s)
        self.now = None  # a later first listener starts afresh
        self._changes.clear()
        self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()


class Crowded(Exception):
    """A stream the station does not take now: as many are open as it keeps, overall or from one address."""


class StreamPlaces:
    """How many streams are open, overall and per client address; at most `overall` and `per_client` (the
    addresses of trusted proxies, which stand for many clients, only count overall). Taken on a request's
    thread, given back on the event loop's: a lock keeps the counts."""

    def __init__(self, overall: int, per_client: int, proxies: Collection[str] = ()):
        self.overall, self.per_client, self.proxies = overall, per_client, frozenset(proxies)
        self.open = 0
        self.refused = 0
        self._refusing = 0  # refused since the last stream taken
        self._by_client: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, client: str) -> Callable[[], None]:
        """A place for a stream of `client`, and what gives it back (once, however often it is called);
        Crowded when there is none."""
        with self._lock:
            crowded = None
            if self.open >= self.overall:
                crowded = Crowded(f"the station serves as many live streams as it keeps ({self.overall})")
            elif client not in self.proxies and self._by_client[client] >= self.per_client:
                crowded = Crowded(f"this address has as many live streams open as it may ({self.per_client})")
            if crowded is not None:
                self.refused += 1
                self._refusing += 1
                if self._refusing == 1:  # once while full: a reader that insists must not fill the log
                    log.warning("stream_refused", client=client, reason=str(crowded), open=self.open)
                raise crowded
            self._refusing = 0
            self.open += 1
            self._by_client[client] += 1
        given_back = threading.Event()

        def give_back() -> None:
            with self._lock:
                if given_back.is_set():
                    return
                given_back.set()
                self.open -= 1
                self._by_client[client] -= 1
                if not self._by_client[client]:
                    del self._by_client[client]

        return give_back
