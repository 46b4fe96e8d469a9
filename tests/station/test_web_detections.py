"""The detections and species pages and the CSV download, over records stored as boxes send them: each filter
alone and together, pages that follow one another, the CSV's columns, filters and quoting, counts without the
events marked false, and both pages in a real chromium (with a species name that is a script)."""

from __future__ import annotations

import csv
import html
import io
import re
import socket
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from edge.station import search
from edge.station.export import EVENT_COLUMNS
from edge.station.store import Store
from edge.station.table import box_lines
from edge.station.web import timeline
from edge.station.web.server import WebServer
from edge.station.web.site import HttpSettings, Site
from support.browser import browser, screenshot
from support.detections import FORMULA, SCRIPT, SPECIES, Boxes, a_week, local_time
from support.waiting import wait_for
from support.web import station_pages, users

WREN, BLACKBIRD, SPINETAIL = SPECIES[1], SPECIES[2], SPECIES[0]


@pytest.fixture(autouse=True)
def bogota(monkeypatch):
    """The station's clock at UTC-5: its local day is not the UTC day."""
    monkeypatch.setenv("TZ", "America/Bogota")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ids(page: requests.Response) -> list[str]:
    """The detections a page lists, in order."""
    return [
        html.unescape(i)
        for i in re.findall(r'<tr class="(?:event|alert)" data-box="[^"]*" data-id="([^"]*)"', page.text)
    ]


def link(page: requests.Response, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]*)"', page.text)
    return html.unescape(found[1]) if found else None


@pytest.fixture
def stored(tmp_path):
    """A few events of two boxes over two local days, an alert, an event of a box without a clock, marks."""
    boxes = Boxes(tmp_path / "station.sqlite")
    boxes.event("box-a", "e1", local_time(0, 6.0), WREN, 0.9)
    boxes.event("box-a", "e2", local_time(0, 7.0), BLACKBIRD, 0.5)
    boxes.event("box-a", "e3", local_time(1, 5.0), WREN, 0.6)
    boxes.event("box-b", "e4", local_time(0, 23.5), WREN, 0.85)  # 04:30 UTC of the next day
    boxes.event("box-b", "e5", local_time(1, 12.0), SPINETAIL, 0.4)
    boxes.event("box-a", "e6", local_time(0, 8.0), BLACKBIRD, 0.7, clock=False)  # placed at its receipt
    boxes.alert("box-b", "a1", local_time(0, 3.0))
    boxes.mark("box-a", "e1", "confirmed", "seen from the hide")
    boxes.mark("box-a", "e3", "false", "a dog barking")
    boxes.acknowledge("box-b", "a1")
    boxes.close()
    return tmp_path


def test_each_filter_and_together(stored):
    with station_pages(stored) as url:

        def listed(**query) -> list[str]:
            page = requests.get(url + "detections", params=query)
            assert page.status_code == 200, page.text
            return ids(page)

        today, yesterday = search.today(), search.today() - timedelta(days=1)
        assert listed() == ["e4", "e6", "e2", "e1", "e5", "e3"]  # events, newest first
        assert listed(kind="all") == ["e4", "e6", "e2", "e1", "a1", "e5", "e3"]
        assert listed(kind="alerts") == ["a1"]
        assert listed(box="box-b") == ["e4", "e5"]
        assert listed(box="box-z") == []
        assert listed(species="Eurasian Wren") == listed(species="Troglodytes troglodytes") == ["e4", "e1", "e3"]
        assert listed(species="Dodo") == []
        assert listed(day=today.isoformat()) == ["e4", "e6", "e2", "e1"]  # e4 is on the next UTC day
        assert listed(day=yesterday.isoformat()) == ["e5", "e3"]
        assert listed(day="2020-01-01") == []
        assert listed(confidence="0.8") == ["e4", "e1"]
        assert listed(confidence="0") == listed()
        assert listed(reviewed="confirmed") == ["e1"]
        assert listed(reviewed="false") == ["e3"]
        assert listed(reviewed="unreviewed") == ["e4", "e6", "e2", "e5"]
        assert listed(box="box-a", species="Eurasian Wren", confidence="0.7") == ["e1"]
        assert listed(box="box-a", species="Eurasian Wren", day=yesterday.isoformat()) == ["e3"]
        assert listed(box="box-b", kind="all", reviewed="unreviewed", day=today.isoformat()) == ["e4", "a1"]
        assert listed(box="", species="  ", day="") == listed()  # an empty field of the form chooses nothing

        page = requests.get(url + "detections", params={"kind": "all"}).text
        assert "seen from the hide" in page and "bo is on the way" in page
        assert "received (the box had no clock)" in page


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"day": "2026-02-30"}, "the day '2026-02-30' is not a date"),
        ({"day": "yesterday"}, "the day 'yesterday' is not a date"),
        ({"day": "9999-12-31"}, "the day '9999-12-31' is out of range"),
        ({"day": "0001-01-01"}, "the day '0001-01-01' is out of range"),
        ({"confidence": "high"}, "the confidence 'high' is not a number from 0 to 1"),
        ({"confidence": "1.5"}, "the confidence '1.5' is not a number from 0 to 1"),
        ({"confidence": "nan"}, "the confidence 'nan' is not a number from 0 to 1"),
        ({"reviewed": "maybe"}, "reviewed is one of all, unreviewed, confirmed, false"),
        ({"kind": "<b>x</b>"}, "kind is one of events, alerts, all"),
        ({"before": "not a page"}, "the page link is damaged"),
    ],
)
def test_a_malformed_filter_is_answered_422_with_the_reason(stored, query, reason):
    with station_pages(stored) as url:
        page = requests.get(url + "detections", params=query)
        assert page.status_code == 422
        assert reason in html.unescape(page.text)
        assert "<b>x</b>" not in page.text and ids(page) == []
        download = requests.get(url + "detections.csv", params=query)
        if "before" not in query:
            assert download.status_code == 422 and reason in download.text


def test_pages_follow_one_another(tmp_path):
    boxes = Boxes(tmp_path / "station.sqlite")
    expected = []
    for n in range(250):
        start = local_time(1, 6 + (n // 5) / 60)  # five events a minute: ties broken by box, then id
        box = f"box-{'abc'[n % 3]}"
        boxes.event(box, f"n{n:03d}", start, SPECIES[n % 8], 0.5)
        expected.append((start, box, f"n{n:03d}"))
    boxes.close()
    expected = [event_id for _, _, event_id in sorted(expected, reverse=True)]
    with station_pages(tmp_path) as url:
        pages, address = [], url + "detections"
        while address:
            page = requests.get(address)
            pages.append(ids(page))
            older = link(page, "next")
            address = url + older[1:] if older else None
            assert ("Newest" in page.text) == (len(pages) > 1)
        assert [len(p) for p in pages] == [100, 100, 50]
        assert [i for p in pages for i in p] == expected
        newer = link(page, "prev")
        assert ids(requests.get(url + newer[1:])) == pages[1]
        assert link(requests.get(url + "detections"), "prev") is None
        filtered = requests.get(url + "detections", params={"box": "box-b", "species": SPECIES[1][1]})
        assert ids(filtered) == [i for i in expected if int(i[1:]) % 3 == 1 and int(i[1:]) % 8 == 1]
        older = link(requests.get(url + "detections", params={"confidence": "0.5", "day": ""}), "next")
        assert older.startswith("/detections?confidence=0.5&before=")  # the filters go on from page to page
        assert ids(requests.get(url + older[1:])) == pages[1]


def test_the_csv_has_the_filters_and_the_marks(stored):
    boxes = Boxes(stored / "station.sqlite")
    boxes.event("box-a", "f1", local_time(0, 9.0), FORMULA, 0.66)
    boxes.close()
    with station_pages(stored) as url:

        def rows(**query) -> list[dict]:
            answer = requests.get(url + "detections.csv", params=query)
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
            assert answer.headers["content-disposition"].startswith("attachment")
            table = list(csv.reader(io.StringIO(answer.text)))
            assert tuple(table[0]) == EVENT_COLUMNS
            return [dict(zip(table[0], row, strict=True)) for row in table[1:]]

        assert [r["id"] for r in rows()] == ["e1", "e2", "e3", "e6", "f1", "e4", "e5"]  # the export's order
        assert [r["id"] for r in rows(box="box-b", kind="all")] == ["e4", "e5", "a1"]
        assert [r["id"] for r in rows(day=search.today().isoformat(), confidence="0.8")] == ["e1", "e4"]
        assert rows(species="Dodo") == []
        by_id = {r["id"]: r for r in rows(kind="all")}
        e3, a1 = by_id["e3"], by_id["a1"]
        assert (e3["verdict"], e3["note"], e3["reviewer"]) == ("false", "a dog barking", "ana")
        assert datetime.fromisoformat(e3["reviewed_utc"]) > datetime.now(UTC) - timedelta(minutes=10)
        assert (a1["alert"], a1["acknowledged_by"], a1["verdict"]) == ("1", "bo", "")
        assert by_id["f1"]["common_name"] == "'" + FORMULA[1] and by_id["f1"]["scientific_name"] == "'" + FORMULA[0]
        named = requests.get(url + "detections.csv", params={"box": "box-a", "day": "2026-11-23"})
        assert 'filename="detections-box-a-2026-11-23.csv"' in named.headers["content-disposition"]
        page = requests.get(url + "detections", params={"box": "box-a", "confidence": "0.5"})
        assert 'href="/detections.csv?box=box-a&amp;confidence=0.5"' in page.text


def test_counts_leave_out_events_marked_false(stored):
    db_path = stored / "station.sqlite"

    def today_counts(box: str) -> tuple[int, int]:
        """The terminal table's (and the boxes page's) events and alerts of today."""
        db = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            line = next(line for line in box_lines(db, datetime.now(UTC)) if line.box == box)
            return line.events_today, line.alerts_today
        finally:
            db.close()

    def mark(box: str, event_id: str, verdict: str) -> None:
        boxes = Boxes(db_path)
        boxes.mark(box, event_id, verdict)
        boxes.close()

    with station_pages(stored) as url:

        def wren_events() -> int:
            page = requests.get(url + "species")
            assert page.status_code == 200
            found = re.search(r'>Eurasian Wren</a>.*?<td class="count">(\d+)</td>', page.text, re.S)
            return int(found[1])

        assert wren_events() == 2  # e1 and e4; e3 is marked false
        assert today_counts("box-a") == (3, 0) and today_counts("box-b") == (1, 1)
        mark("box-a", "e1", "false")
        mark("box-b", "a1", "false")
        assert wren_events() == 1
        assert today_counts("box-a") == (2, 0) and today_counts("box-b") == (1, 0)
        mark("box-a", "e1", "cleared")  # a mark taken back counts again
        assert wren_events() == 2 and today_counts("box-a") == (3, 0)
        mark("box-a", "e1", "confirmed")
        assert wren_events() == 2


def test_species_page(stored):
    boxes = Boxes(stored / "station.sqlite")
    boxes.event("box-c", "script", local_time(0, 7.0), SCRIPT, 0.77)
    boxes.event("box-c", "old", local_time(30, 7.0), WREN, 0.99)
    boxes.close()
    today, yesterday = search.today(), search.today() - timedelta(days=1)
    with station_pages(stored) as url:
        page = requests.get(url + "species")
        assert page.status_code == 200
        text = page.text
        assert f"{today - timedelta(days=6)} to {today}" in text and "4 species heard" in text
        assert (
            "&lt;script&gt;window.pwned = 2&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in text
            and "<script>window" not in text
        )
        wren = f'href="/detections?species=Troglodytes+troglodytes&amp;day={today}"'
        assert wren in text  # its count of today links to those detections
        by_box = requests.get(url + "species", params={"by": "box", "box": "box-b"}).text
        assert 'href="/detections?species=Troglodytes+troglodytes&amp;box=box-b"' in by_box
        assert "Eurasian Blackbird" not in by_box
        span = requests.get(url + "species", params={"from": str(today - timedelta(days=40)), "to": str(yesterday)})
        assert "0.99" in span.text and "Red-faced Spinetail" in span.text
        for query, reason in (
            ({"from": "soon"}, "from 'soon' is not a date"),
            ({"from": str(today), "to": str(yesterday)}, "is after to"),
            ({"from": "2020-01-01", "to": "2020-12-31"}, "at most 92 days"),
            ({"by": "week"}, "by is one of day, box"),
            ({"to": "9999-12-31"}, "to '9999-12-31' is out of range"),
            ({"to": "0002-01-03"}, "from 0001-12-28 is out of range"),
        ):
            answer = requests.get(url + "species", params=query)
            assert answer.status_code == 422 and reason in html.unescape(answer.text)


def test_the_timeline_keeps_a_crowded_day_readable(tmp_path):
    boxes = Boxes(tmp_path / "station.sqlite")
    names = [(f"Species {n:02d}", f"Bird {n:02d}") for n in range(45)]
    for n in range(700):
        boxes.event(f"box-{n % 4}", f"c{n}", local_time(1, (n * 37 % 1440) / 60), names[n % 45], 0.3 + (n % 7) / 10)
    boxes.close()
    db = sqlite3.connect(tmp_path / "station.sqlite")
    db.row_factory = sqlite3.Row
    day = search.today() - timedelta(days=1)
    crowded = timeline.chart(db, search.Filters(kind="events"), day, lambda s: f"/detections?species={s}")
    assert crowded.binned and crowded.detections == 700
    assert len(crowded.lanes) == timeline.MAX_LANES and crowded.hidden == 5
    assert all(len(lane.marks) <= 96 for lane in crowded.lanes)
    assert sum(lane.detections for lane in crowded.lanes) + 5 * 15 == 700
    one = timeline.chart(db, search.Filters(kind="events", box="box-1"), day, lambda s: "")
    assert not one.binned and one.detections == 175 and len(one.lanes) == 40 and one.hidden == 5
    assert all(len(lane.marks) == lane.detections for lane in one.lanes)
    assert all(timeline.LABELS <= m.x + 1 <= timeline.WIDTH for lane in one.lanes for m in lane.marks)
    db.close()


def test_both_pages_in_a_browser(tmp_path):
    a_week(tmp_path / "station.sqlite")
    with station_pages(tmp_path) as url, browser() as chromium:
        users(tmp_path / "station.sqlite", ("ana", "ranger", "ranger-password"))
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "detections")
        wait_for(lambda: page.locator("table.detections tr.event").count() > 0, what="the detections")
        assert page.locator("svg.timeline rect").count() > 20
        # a species name that is a script: shown as text in the table and the chart, never run
        assert page.locator("table.detections span.species", has_text="<script>window.pwned = 2").count() == 1
        assert page.locator("svg.timeline text.species", has_text="<script>window.pwned").count() == 1
        assert page.evaluate("window.pwned") is None
        assert page.locator("form.review").count() == 0  # a guest sees the marks, without the buttons
        assert page.locator(".mark-badge .badge.mark-false").count() == 1

        page.select_option("select[name=box]", "box-a")
        page.fill("input[name=species]", "Eurasian Wren")
        page.fill("input[name=confidence]", "0.5")
        page.click("button[type=submit]")
        page.wait_for_url(lambda address: "box=box-a&species=Eurasian+Wren&" in address)
        rows = page.locator("table.detections tbody tr")
        wait_for(lambda: rows.count() > 0, what="the filtered detections")
        for row in rows.all():
            assert row.get_attribute("data-box") == "box-a" and "Eurasian Wren" in row.inner_text()

        page.goto(url + "login?next=/detections")
        page.fill("form.login input[name=name]", "ana")
        page.fill("form.login input[name=password]", "ranger-password")
        page.click("form.login button")
        page.wait_for_url(lambda address: address.endswith("/detections"))
        yesterday = search.today() - timedelta(days=1)
        page.select_option("select[name=box]", "box-b")
        page.fill("input[name=day]", yesterday.isoformat())
        page.select_option("select[name=kind]", "all")
        page.click("form.filters button[type=submit]")
        page.wait_for_url(lambda address: f"box=box-b&species=&day={yesterday}&" in address)
        alert = page.locator("table.detections tr.alert")
        wait_for(lambda: alert.count() == 1, what="the alert among the events")
        assert "bo is on the way" in alert.inner_text()
        assert page.locator("td.mark .badge.mark-false").count() == 1
        assert page.locator("td.mark .badge.mark-confirmed").count() == 1
        assert page.locator("h2", has_text=f"{yesterday}:").count() == 1  # the chart is of that day
        # the alert's clip plays in the page, and a ranger marks it from here
        alert.locator("a.play").click()
        duration = wait_for(
            lambda: page.evaluate("document.getElementById('clip-player')?.duration || 0"), what="the clip to load"
        )
        assert 2.5 < duration < 3.5
        saved = alert.locator("td.clip a[download]").get_attribute("href")
        assert saved == alert.locator("a.play").get_attribute("href") + "?download=1"
        download = requests.get(url + saved[1:])
        assert download.headers["content-disposition"].startswith("attachment") and download.content[:4] == b"fLaC"
        alert.locator("details.review summary").click()
        alert.locator("input[name=note]").fill("shots heard from the ridge too")
        alert.locator("button[data-verdict=confirmed]").click()
        wait_for(lambda: alert.locator(".badge.mark-confirmed").count() == 1, what="the mark")
        screenshot(page, "detections")
        page.goto(url + "detections?reviewed=confirmed&kind=alerts")
        assert "shots heard from the ridge too" in page.locator("table.detections tr.alert").inner_text()

        page.goto(url + "species")
        table = page.locator("table.species")
        assert table.locator("a.species", has_text="<script>window.pwned = 2</script><b>bold</b>").count() == 1
        assert page.evaluate("window.pwned") is None and page.locator("b", has_text="bold").count() == 0
        screenshot(page, "species")
        table.locator("a.species", has_text="Eurasian Wren").click()
        page.wait_for_url(lambda address: address.endswith("/detections?species=Troglodytes+troglodytes"))
        assert page.locator("table.detections tbody tr").count() > 3


def test_a_kept_alive_connection_is_answered_at_once(tmp_path):
    """The pages' connections have TCP_NODELAY: without it, every answer on a reused connection (as a browser
    keeps them) waits for the delayed ACK of its first segment, 40 ms on Linux."""
    db_path = tmp_path / "station.sqlite"
    Store.open(db_path).close()
    server = WebServer(Site(db_path, tmp_path / "clips", HttpSettings(address="127.0.0.1:0")), "127.0.0.1:0")
    server.start()
    try:
        wait_for(lambda: server.server.started, what="the web server to start")
        with requests.Session() as session:
            for path in ("detections", "species"):
                assert session.get(server.url + path).status_code == 200
            (connection,) = server.server.server_state.connections
            accepted = connection.transport.get_extra_info("socket")
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.stop()
