"""The live alerts' feed under load: how many streams the station keeps open (overall and per client address),
what a refused reader is told, and that a change is read from the database once for every open stream.

Many streams are open at once, each a plain socket of its own (no thread per reader); clients of other
addresses connect from other addresses of the loopback network (127.0.0.2...)."""

from __future__ import annotations

import json
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from playwright.sync_api import expect

from edge.station import alerts
from edge.station.messages import parse
from edge.station.store import Store
from edge.station.web.site import HttpSettings, Site
from edge.wire.records import iso
from support import paths
from support.browser import browser
from support.waiting import wait_for
from support.web import serve

GOLDEN = json.loads((paths.GOLDEN / "alert_v2.json").read_text())
STREAM = "/api/alerts/stream"
ALERTS_QUERY = "FROM detections d LEFT JOIN clips c"  # edge.station.alerts ALERTS: one alert's view
CHANGED_QUERY = "UNION SELECT box, id FROM reviews"  # edge.station.alerts CHANGED: which alerts changed


class RawStream:
    """One GET of `path` on a socket of its own from `source` (an address of this machine), read as bytes."""

    def __init__(self, url: str, path: str = STREAM, source: str = "127.0.0.1", **headers: str):
        where = urlsplit(url)
        self.socket = socket.create_connection((where.hostname, where.port), timeout=60, source_address=(source, 0))
        lines = [f"GET {path} HTTP/1.1", f"Host: {where.netloc}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.received = b""
        head = self.until(b"\r\n\r\n").split(b"\r\n\r\n")[0].decode().split("\r\n")
        self.status = int(head[0].split()[1])
        self.headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in head[1:])}

    def until(self, marker: bytes) -> bytes:
        """What arrived, once it holds `marker` (the socket's timeout fails a stream that stalls)."""
        while marker not in self.received:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise AssertionError(f"closed before {marker!r}: {self.received[-300:]!r}")
            self.received += chunk
        return self.received

    def body(self) -> bytes:
        """The whole body of an answer that is no stream (it has a content-length)."""
        start = self.received.index(b"\r\n\r\n") + 4
        length = int(self.headers["content-length"])
        while len(self.received) < start + length:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise AssertionError(f"closed within the body: {self.received[-300:]!r}")
            self.received += chunk
        return self.received[start : start + length]

    def events(self) -> tuple[str, ...]:
        """The data of the events received so far."""
        lines = self.received.split(b"\r\n\r\n", 1)[1].decode().split("\n")
        return tuple(line.removeprefix("data: ") for line in lines if line.startswith("data: "))

    def close(self) -> None:
        self.socket.close()


def opened(url: str, source: str = "127.0.0.1", path: str = STREAM) -> RawStream:
    """A stream the station accepted, once it is listening to the feed (it sends `retry:` then)."""
    stream = RawStream(url, path, source)
    assert stream.status == 200, stream.received
    stream.until(b"retry: ")
    return stream


def refused(url: str, source: str = "127.0.0.1") -> dict:
    """The answer to a stream the station does not take: 503, with Retry-After and the reason in JSON."""
    stream = RawStream(url, STREAM, source)
    try:
        assert stream.status == 503, stream.received
        assert int(stream.headers["retry-after"]) > 0
        assert stream.headers["content-type"] == "application/json"
        return json.loads(stream.body())
    finally:
        stream.close()


@dataclass
class CountedSite(Site):
    """The station's site, with every SQL statement run on the connections it opens for reading counted."""

    statements: list[str] = field(default_factory=list)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with super().read() as db:
            db.set_trace_callback(self.statements.append)
            yield db

    def count(self, text: str) -> int:
        return sum(text in statement for statement in list(self.statements))


@contextmanager
def pages(tmp_path, **settings) -> Iterator[tuple[CountedSite, Store, str]]:
    """The pages over a fresh station database: the site (its statements counted), the database as the MQTT
    thread writes it, the URL."""
    db_path = tmp_path / "station.sqlite"
    store = Store.open(db_path)
    site = CountedSite(db_path, tmp_path / "clips", HttpSettings(address="127.0.0.1:0", **settings))
    try:
        with serve(site) as url:
            yield site, store, url
    finally:
        store.close()


def add_alert(store: Store, seq: int) -> str:
    """A new alert record of box-a, stored as the station stores what a box publishes; its id."""
    record = GOLDEN | {"id": str(uuid.uuid4()), "box": "box-a", "seq": seq, "detected_utc": iso(datetime.now(UTC))}
    store.add(parse("box-a", "alerts", json.dumps(record).encode(), iso(datetime.now(UTC))))
    return record["id"]


def cursor_of(site: Site) -> str:
    """Where the tables are, as a page hands it to its stream."""
    with site.read() as db:
        return str(alerts.cursor(db))


def test_one_new_alert_is_read_once_for_all_the_open_streams(tmp_path):
    """50 readers wait on the feed; one alert arrives: the station reads which alerts changed, and that alert's
    view, once, and every reader gets the same events. Readers that come back from an older cursor read their
    catch-up once between them, then share the next change with the others."""
    readers = 50
    with pages(tmp_path) as (site, store, url), ExitStack() as closing:
        earlier = add_alert(store, 1)
        before = f"{STREAM}?after={cursor_of(site)}"
        streams = [closing.enter_context(closing_stream(opened(url, path=before))) for _ in range(readers)]
        site.statements.clear()
        first = add_alert(store, 2)
        for stream in streams:
            stream.until(first.encode())
        print(
            f"\none new alert with {readers} streams open: {site.count(CHANGED_QUERY)} queries of what changed, "
            f"{site.count(ALERTS_QUERY)} of the alert's view"
        )
        assert (site.count(CHANGED_QUERY), site.count(ALERTS_QUERY)) == (1, 1)
        sent = {stream.events() for stream in streams}
        assert len(sent) == 1, "the same events to every reader"
        assert [json.loads(data)["id"] for data in sent.pop()] == [first]

        site.statements.clear()
        behind = [closing.enter_context(closing_stream(opened(url, path=f"{STREAM}?after=0-0-0-0"))) for _ in range(10)]
        for stream in behind:
            stream.until(first.encode())
            assert [json.loads(data)["id"] for data in stream.events()] == [earlier, first]
        assert (site.count(CHANGED_QUERY), site.count(ALERTS_QUERY)) == (1, 2), "one catch-up for the ten"
        site.statements.clear()
        second = add_alert(store, 3)
        for stream in streams + behind:
            stream.until(second.encode())
        assert (site.count(CHANGED_QUERY), site.count(ALERTS_QUERY)) == (1, 1)
        assert {stream.events()[-1] for stream in streams + behind} == {streams[0].events()[-1]}


def attempt(url: str, source: str) -> RawStream | None:
    """A stream from `source` if the station takes it now."""
    stream = RawStream(url, STREAM, source)
    if stream.status == 200:
        return stream
    stream.close()
    return None


def test_streams_beyond_the_limits_are_refused_with_503_and_retry_after(tmp_path):
    """At most max_streams open, and max_streams_per_client from one address; 127.0.0.1 is a trusted proxy (the
    default), which stands for many clients: it counts only overall. A place is free again once its reader
    has left, and the streams taken go on."""
    with pages(tmp_path, max_streams=6, max_streams_per_client=2) as (site, store, url), ExitStack() as closing:

        def kept(stream: RawStream) -> RawStream:
            return closing.enter_context(closing_stream(stream))

        leaving, staying = kept(opened(url, "127.0.0.2")), kept(opened(url, "127.0.0.2"))
        crowded = refused(url, "127.0.0.2")
        assert crowded["error"].startswith("this address has as many live streams open as it may (2)")
        kept(opened(url, "127.0.0.3"))
        for _ in range(3):
            kept(opened(url, "127.0.0.1"))
        for source in ("127.0.0.4", "127.0.0.1"):
            assert refused(url, source)["error"].startswith("the station serves as many live streams as it keeps (6)")
        leaving.close()
        back = kept(wait_for(lambda: attempt(url, "127.0.0.2"), what="the place of a reader who left"))
        assert refused(url, "127.0.0.4")
        alert_id = add_alert(store, 1)
        for stream in (staying, back):
            stream.until(alert_id.encode())


def test_a_page_refused_its_stream_tries_again_later_and_goes_live(tmp_path):
    """A browser does not come back by itself after a 503 (EventSource gives up): the page says so and tries
    again, later and later, from where it was; once a place is free it is live and misses nothing."""
    with pages(tmp_path, max_streams=1) as (site, store, url), browser() as chromium:
        first, second = chromium.new_page(), chromium.new_page()
        first.goto(url + "alerts")
        earlier = add_alert(store, 1)
        expect(first.locator(f'.alert-card[data-id="{earlier}"]')).to_be_visible()  # the first page is live
        second.goto(url + "alerts")
        expect(second.locator("#feed-state")).to_contain_text("Live updates paused: trying again in")
        missed = add_alert(store, 2)
        expect(first.locator(f'.alert-card[data-id="{missed}"]')).to_be_visible()
        first.close()
        expect(second.locator("#feed-state")).to_have_text("Live: new alerts appear at the top.", timeout=60_000)
        expect(second.locator(f'.alert-card[data-id="{missed}"]')).to_be_visible()
        later = add_alert(store, 3)
        expect(second.locator(f'.alert-card[data-id="{later}"]')).to_be_visible()


@contextmanager
def closing_stream(stream: RawStream) -> Iterator[RawStream]:
    try:
        yield stream
    finally:
        stream.close()
