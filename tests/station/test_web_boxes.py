"""The boxes page and a box's own page: boxes tell the station where they are (their status carries the position
of their configuration), and the pages show each box's state, health and place, in a real chromium.

A real box daemon publishes through a real mosquitto to a real `edge station --http`; other boxes are records
published as a box does (mosquitto_pub, or parsed and stored as the station stores them)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from edge.station import reviews
from edge.station.messages import RecordError, parse
from edge.station.store import Store
from edge.station.table import local_day_start
from edge.station.web import boxmap, linechart
from edge.wire.records import iso, status_payload
from support.broker import free_port, mosquitto_pub
from support.browser import browser, screenshot
from support.config import write_config
from support.paths import DATA, GOLDEN
from support.processes import DaemonProcess, StationProcess
from support.pulse import PulseServer, pulse_server
from support.records import query
from support.web import station_pages

# Four boxes along a river valley, a few kilometres apart.
PLACES = {
    "wetland-01": (6.7712, -74.2105),
    "wetland-02": (6.7841, -74.1893),
    "ridge-03": (6.7958, -74.2302),
    "creek-04": (6.7627, -74.1718),
}
MARKUP = "<script>alert('box')</script><b>0.9</b>"
EVENT = json.loads((GOLDEN / "event_v1.json").read_text())
ALERT = json.loads((GOLDEN / "alert_v2.json").read_text())


class Fleet:
    """Records of several boxes, as they publish them, parsed and stored as the station stores what it receives."""

    def __init__(self, db_path: Path):
        self.store = Store.open(db_path)
        self.seqs: dict[str, int] = {}

    def add(self, box: str, kind: str, payload: dict, received: datetime | None = None) -> None:
        if kind != "status":
            self.seqs[box] = payload["seq"] = self.seqs.get(box, 0) + 1
        text = json.dumps({**payload, "box": box}).encode()
        self.store.add(parse(box, kind, text, iso(received or datetime.now(UTC))))

    def status(self, box: str, state: str, at: datetime, place: tuple[float, float] | None, **fields) -> None:
        payload = {**json.loads(status_payload(box, state, place)), "time_utc": iso(at), **fields}
        self.add(box, "status", payload, at)

    def health(self, box: str, at: datetime, rtf: float, cpu: float, disk: float, **fields) -> None:
        self.add(box, "health", health(box, at, rtf, cpu, disk, **fields), at)

    def heard(self, box: str, at: datetime, name: str, alert: bool = False) -> str:
        """An event (start and end) or an alert of `name` at `at`; its id."""
        event_id = f"{box}-{self.seqs.get(box, 0)}"
        start, end = iso(at), iso(at + timedelta(seconds=5))
        common = {"id": event_id, "start_utc": start, "end_utc": end, "common_name": name, "scientific_name": name}
        if alert:
            self.add(box, "alerts", {**ALERT, **common, "alert_class": name, "detected_utc": end}, at)
        else:
            for kind in ("start", "end"):
                self.add(box, "events", {**EVENT, **common, "kind": kind}, at)
        return event_id

    def close(self) -> None:
        self.store.close()


def health(box: str, at: datetime, rtf: float, cpu: float, disk: float, **fields) -> dict:
    """A health record with the fields the daemon's has (edge.app.health)."""
    return {
        "schema": "edge.health/1",
        "box": box,
        "time_utc": iso(at),
        "seq": 1,
        "uptime_s": 86400.0,
        "audio_seconds": 86000.0,
        "interval_s": 300.0,
        "interval_audio_s": 300.0,
        "real_time_factor": rtf,
        "cpu_percent": cpu,
        "rss_mb": 310.5,
        "disk_free_mb": disk * 300,
        "disk_free_percent": disk,
        "clock": "synchronized",
        "outbox_pending": 0,
        **fields,
    }


def fill(db_path: Path, now: datetime) -> None:
    """A day of four boxes (and one without a position): wetland-01 online with a full day of health and a
    silence in it, wetland-02 online but silent for an hour (stale), ridge-03 offline, creek-04 stopped,
    hut-05 online without a position."""
    fleet = Fleet(db_path)
    day_ago = now - timedelta(hours=24)
    fleet.status("wetland-01", "online", day_ago, PLACES["wetland-01"])
    for step in range(0, 24 * 12):
        at = day_ago + timedelta(minutes=5 * step)
        if 14 * 12 <= step < 16 * 12:  # two hours without a link
            continue
        night = math.cos(2 * math.pi * step / (24 * 12))
        rtf = 0.06 + 0.03 * night + (0.5 if step == 20 * 12 else 0.0)
        fleet.health("wetland-01", at, round(rtf, 3), round(100 * rtf / 2, 1), round(64 - step / 40, 1))
    fleet.health("wetland-01", now - timedelta(seconds=20), 0.07, 3.5, 56.8, outbox_pending=2)
    fleet.status("wetland-02", "online", now - timedelta(hours=3), PLACES["wetland-02"])
    fleet.health("wetland-02", now - timedelta(hours=1), 0.11, 6.0, 41.0, clock="unsynchronized")
    fleet.status("ridge-03", "online", now - timedelta(hours=6), PLACES["ridge-03"])
    fleet.health("ridge-03", now - timedelta(minutes=50), 0.09, 4.0, 77.0)
    fleet.status("ridge-03", "offline", now - timedelta(hours=6), PLACES["ridge-03"])
    fleet.status("creek-04", "stopped", now - timedelta(hours=2), PLACES["creek-04"], outbox_pending=0, mqtt_sent=812)
    fleet.status("hut-05", "online", now - timedelta(hours=1), None)
    fleet.health("hut-05", now - timedelta(seconds=40), 0.21, 11.0, 88.0)
    today = now - local_day_start(now)  # what is heard "today" must be today whenever the test runs

    def earlier(share: float) -> datetime:
        return now - today * share

    for share, name in ((0.9, "Tawny Owl"), (0.7, "Eurasian Wren"), (0.5, "Common Chiffchaff"), (0.1, "Tawny Owl")):
        fleet.heard("wetland-01", earlier(share), name)
    fleet.heard("wetland-01", earlier(0.3), "Gun", alert=True)
    false_alarm = fleet.heard("wetland-01", earlier(0.05), "Chainsaw", alert=True)
    fleet.heard("wetland-02", earlier(0.4), "Common Cuckoo")
    with fleet.store.transaction():
        reviews.mark(fleet.store.db, "wetland-01", false_alarm, "false", "a generator at the hut", "ana")
    fleet.close()


def test_a_status_tells_where_the_box_is():
    online = json.loads(status_payload("wetland-03", "online", (6.7712, -74.2105)))
    assert (online["latitude"], online["longitude"]) == (6.7712, -74.2105)
    assert "latitude" not in json.loads(status_payload("wetland-03", "online"))
    received = "2026-11-23T09:00:00.000+00:00"
    assert parse("wetland-03", "status", json.dumps(online).encode(), received).payload["latitude"] == 6.7712
    for wrong, reason in (
        ({"latitude": 91.0}, "not within"),
        ({"longitude": -180.5}, "not within"),
        ({"latitude": "6.77"}, "not a number"),
        ({"latitude": True}, "not a number"),
        ({"longitude": None}, "go together"),
    ):
        with pytest.raises(RecordError, match=reason):
            parse("wetland-03", "status", json.dumps({**online, **wrong}).encode(), received)


def test_the_station_keeps_the_position_of_the_newest_status(tmp_path):
    fleet = Fleet(tmp_path / "station.sqlite")
    now = datetime.now(UTC)
    fleet.status("wetland-01", "online", now, (6.7712, -74.2105))
    fleet.status("wetland-01", "offline", now, (6.7712, -74.2105))
    place = "SELECT latitude, longitude FROM boxes WHERE box = 'wetland-01'"
    assert tuple(fleet.store.db.execute(place).fetchone()) == (6.7712, -74.2105)
    fleet.status("wetland-01", "online", now + timedelta(seconds=1), None)  # moved, and not told where
    assert tuple(fleet.store.db.execute(place).fetchone()) == (None, None)
    fleet.close()


def test_the_map_keeps_distances_and_north_up():
    sheet = boxmap.draw([(box, *place) for box, place in PLACES.items()])
    pins = {pin.box: pin for pin in sheet.pins}
    north, south = pins["ridge-03"], pins["creek-04"]
    assert north.y < south.y and north.x < south.x  # north up, east right
    for pin in pins.values():
        assert boxmap.MARGIN <= pin.x <= sheet.width - boxmap.MARGIN
        assert boxmap.MARGIN <= pin.y <= sheet.height - boxmap.MARGIN
    # 0.0129 degrees of latitude and 0.0212 of longitude at 6.78 N: 1.434 km and 2.341 km.
    a, b = pins["wetland-01"], pins["wetland-02"]
    assert (a.y - b.y) * sheet.km_per_unit == pytest.approx(1.434, rel=0.01)
    assert (b.x - a.x) * sheet.km_per_unit == pytest.approx(2.341, rel=0.01)
    assert sheet.scale.label == "1 km" and sheet.scale.length * sheet.km_per_unit == pytest.approx(1.0, rel=0.01)


def test_the_map_of_one_box_and_across_the_antimeridian():
    (alone,) = boxmap.draw([("hut-05", -45.0, 170.0)]).pins
    assert (alone.x, alone.y) == (boxmap.WIDTH / 2, boxmap.HEIGHT / 2)
    sheet = boxmap.draw([("east", -16.5, 179.99), ("west", -16.5, -179.99)])
    east, west = sheet.pins
    assert (west.x - east.x) * sheet.km_per_unit == pytest.approx(2.13, rel=0.01)  # neighbours, not a world apart
    assert sheet.scale.label in ("500 m", "200 m") and boxmap.draw([]) is None


def test_the_health_chart_keeps_peaks_and_breaks_at_silences():
    start = datetime(2026, 11, 23, tzinfo=UTC)
    points = [(start + timedelta(seconds=10 * i), 0.05) for i in range(8640) if not 3000 <= i < 3600]
    points[5000] = (points[5000][0], 0.8)  # one record of 10 s under load, among 8,000
    chart = linechart.draw([linechart.Series("rtf", "", points, mark=1.0)], start, start + timedelta(days=1))
    (panel,) = chart.panels
    assert len(panel.lines) == 2, "the silence breaks the line"
    ys = [float(xy.split(",")[1]) for line in panel.lines for xy in line.split()]
    assert len(ys) <= linechart.BUCKETS
    assert panel.scale_top == "1" and min(ys) == pytest.approx(panel.top + panel.height * (1 - 0.8))
    assert panel.mark_y == pytest.approx(panel.top)
    assert [tick.label for tick in chart.ticks][:1] and all(t.label.endswith(":00") for t in chart.ticks)


def test_the_boxes_page_and_a_box_page(tmp_path):
    """Several boxes: each one's state and figures, the stale one and the offline one flagged, the map; a box's
    page with its day of health and what it heard. Counts leave out what a ranger marked false."""
    now = datetime.now(UTC)
    with station_pages(tmp_path) as url:
        fill(tmp_path / "station.sqlite", now)
        with browser() as chromium:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            row = page.locator('tr[data-box="wetland-01"]')
            assert row.locator(".status .badge").inner_text() == "online"
            assert row.locator(".rtf").inner_text() == "0.07"
            assert row.locator(".cpu").inner_text() == "4 %"
            assert row.locator(".disk").inner_text().startswith("57 %")
            assert row.locator(".outbox").inner_text() == "2"
            assert row.locator(".clock").inner_text() == "synchronized"
            assert row.locator(".events").inner_text() == "4"
            assert row.locator(".alerts").inner_text() == "1", "the alert marked false is not counted"
            assert row.locator(".species").inner_text() == "Gun, Tawny Owl, Common Chiffchaff"
            assert "stale" not in row.get_attribute("class")
            stale = page.locator('tr[data-box="wetland-02"]')
            assert "stale" in stale.get_attribute("class") and stale.locator(".stale-flag").is_visible()
            assert stale.locator(".clock .warn").inner_text() == "unsynchronized"
            offline = page.locator('tr[data-box="ridge-03"]')
            assert offline.locator(".badge").inner_text() == "offline"
            assert offline.evaluate("row => getComputedStyle(row.querySelector('td.box')).color") == "rgb(179, 38, 30)"
            assert page.locator('tr[data-box="creek-04"] .badge').inner_text() == "stopped"
            pins = page.locator("svg.boxmap a.pin")
            assert sorted(pins.evaluate_all("pins => pins.map(p => p.dataset.box)")) == sorted(PLACES)
            assert "status-offline" in page.locator('svg.boxmap a.pin[data-box="ridge-03"]').get_attribute("class")
            assert "stale" in page.locator('svg.boxmap a.pin[data-box="wetland-02"]').get_attribute("class")
            assert page.locator("svg.boxmap .scale text").text_content() == "1 km"
            assert page.locator(".unplaced a").inner_text() == "hut-05"
            screenshot(page, "boxes")

            page.locator('svg.boxmap a.pin[data-box="wetland-01"]').click()
            page.wait_for_url(url + "boxes/wetland-01")
            assert page.inner_text("h1") == "Box wetland-01"
            assert page.locator("dd.position").inner_text() == "6.77120, -74.21050"
            panels = page.locator("svg.healthchart g.panel")
            assert panels.count() == 3
            assert panels.nth(0).locator("polyline").count() == 2, "the two hours without a link break the line"
            assert panels.nth(0).locator(".mark").count() == 1
            alerts = page.locator("table.alerts tbody tr")
            assert alerts.count() == 2 and "marked-false" in alerts.nth(0).get_attribute("class")
            assert alerts.nth(0).inner_text().split("\t")[3].startswith("false")
            assert page.locator("table.events tbody tr").count() == 4
            assert page.locator('a[href="/alerts?box=wetland-01"]').count() == 1
            assert page.locator('a[href="/detections?box=wetland-01"]').count() == 1
            screenshot(page, "box")

        listed = {box["box"]: box for box in requests.get(url + "api/boxes").json()}
        assert set(listed) == {*PLACES, "hut-05"}
        assert listed["wetland-02"]["stale"] and not listed["wetland-01"]["stale"]
        assert (listed["ridge-03"]["latitude"], listed["ridge-03"]["status"]) == (6.7958, "offline")
        assert requests.get(url + "boxes/no-such-box").status_code == 404
        assert requests.get(url + "boxes/%3Cscript%3E").status_code == 404


def test_stale_follows_the_setting(tmp_path):
    """With a limit of two hours, the box silent for an hour is no longer flagged; one without health is."""
    now = datetime.now(UTC)
    with station_pages(tmp_path, stale_health_s=7200) as url:
        fill(tmp_path / "station.sqlite", now)
        listed = {box["box"]: box["stale"] for box in requests.get(url + "api/boxes").json()}
    assert listed == {"wetland-01": False, "wetland-02": False, "ridge-03": False, "creek-04": True, "hut-05": False}


def live_box(tmp_path: Path, broker, pulse: PulseServer) -> DaemonProcess:
    """A box on a live microphone (a private PulseAudio's), with its position and the uplink to `broker`:
    audio flows all the time, so each health record has a real-time factor."""
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "microphone", "device": "pulse", "sample_rate": 48000},
        box_id="wetland-07",
        mqtt={"host": "127.0.0.1", "port": broker.port},
        species={"latitude": 6.7712, "longitude": -74.2105},
    )
    return DaemonProcess(config, env={name: pulse.env[name] for name in ("PULSE_SERVER", "PULSE_CLIENTCONFIG")})


def test_a_box_appears_online_on_the_map_and_then_stopped(broker, tmp_path):
    """The real daemon: its position from its configuration, through the broker, to the page; its health
    figures; and when it stops, the open page turns it stopped by itself."""
    db = tmp_path / "station.sqlite"
    port = free_port()
    with pulse_server(tmp_path / "pulse") as pulse:
        birds = pulse.play(DATA / "maad_spinetail.wav")
        station = StationProcess(broker, db, "--http", f"127.0.0.1:{port}")
        daemon = live_box(tmp_path, broker, pulse)
        try:
            watch_the_box_stop(station, daemon, db, port)
        finally:
            birds.kill()
            daemon.close()
            station.close()


def watch_the_box_stop(station: StationProcess, daemon: DaemonProcess, db: Path, port: int) -> None:
    station.wait_log("web_started")
    placed = "SELECT latitude, longitude FROM boxes WHERE box = 'wetland-07' AND latitude IS NOT NULL"
    assert tuple(station.wait_for(lambda: query(db, placed), 120, "the box's position")[0]) == (6.7712, -74.2105)
    station.wait_for(lambda: query(db, "SELECT 1 FROM boxes WHERE box = 'wetland-07' AND health IS NOT NULL"), 120)
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        row = page.locator('tr[data-box="wetland-07"]')
        assert row.locator(".badge").inner_text() == "online"
        assert float(row.locator(".rtf").inner_text()) >= 0
        assert row.locator(".cpu").inner_text().endswith(" %")
        assert row.locator(".disk").inner_text().split()[0].isdigit()
        assert row.locator(".clock").inner_text() in ("synchronized", "unsynchronized", "unknown")
        assert row.locator(".missing").inner_text() == "0"
        assert "stale" not in row.get_attribute("class")
        pin = page.locator('svg.boxmap a.pin[data-box="wetland-07"]')
        assert "status-online" in pin.get_attribute("class")
        assert pin.get_attribute("href") == "/boxes/wetland-07"
        code, _ = daemon.terminate()
        assert code == 0
        # The page is not loaded again: it refreshes its figures by itself.
        page.wait_for_selector('tr[data-box="wetland-07"] .badge.stopped', timeout=120_000)
        assert "status-stopped" in pin.get_attribute("class")
        assert page.inner_text("#refreshed").startswith("Updated")
    assert station.terminate() == 0


def test_stale_and_offline_boxes_and_markup_in_a_status(broker, tmp_path):
    """Records published with mosquitto_pub as anyone on the network can: a box whose newest health record is
    two hours old is flagged stale; a box gone offline is red; a version carrying markup is shown as text, in
    the table, on the box's page and in the map's titles."""
    db = tmp_path / "station.sqlite"
    port = free_port()
    station = StationProcess(broker, db, "--http", f"127.0.0.1:{port}")
    now = datetime.now(UTC)
    try:
        station.wait_log("station_subscribed")
        old = health("wetland-02", now - timedelta(hours=2), 0.1, 5.0, 40.0)
        messages = [
            ("wetland-02/status", json.loads(status_payload("wetland-02", "online", PLACES["wetland-02"]))),
            ("wetland-02/health", old),
            (
                "ridge-03/status",
                {**json.loads(status_payload("ridge-03", "online", PLACES["ridge-03"])), "version": MARKUP},
            ),
            ("ridge-03/health", health("ridge-03", now, 0.1, 5.0, 40.0, clock="<i>unknown</i>")),
            (
                "ridge-03/status",
                {**json.loads(status_payload("ridge-03", "offline", PLACES["ridge-03"])), "version": MARKUP},
            ),
        ]
        for topic, payload in messages:
            mosquitto_pub(broker, f"edge/{topic}", json.dumps(payload).encode(), tmp_path)
        station.wait_for(
            lambda: query(db, "SELECT 1 FROM boxes WHERE box = 'ridge-03' AND status = 'offline'"), what="offline"
        )
        with browser() as chromium:
            page = chromium.new_page()
            dialogs = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"http://127.0.0.1:{port}/")
            stale = page.locator('tr[data-box="wetland-02"]')
            assert stale.locator(".stale-flag").inner_text() == "stale"
            assert stale.locator(".health").inner_text().startswith("2 h ago")
            offline = page.locator('tr[data-box="ridge-03"]')
            assert "status-offline" in offline.get_attribute("class")
            assert offline.locator(".version").inner_text() == MARKUP
            assert offline.locator(".clock").inner_text() == "<i>unknown</i>"
            assert offline.locator("b, i, script").count() == 0
            title = page.locator('svg.boxmap a.pin[data-box="ridge-03"] title').text_content()
            assert title == f"ridge-03: offline, version {MARKUP}"
            page.goto(f"http://127.0.0.1:{port}/boxes/ridge-03")
            assert page.locator("dd.version").inner_text() == MARKUP
            assert page.locator("#box-live b, #box-live i, #box-live script").count() == 0
            assert dialogs == []
        assert station.terminate() == 0
    finally:
        station.close()
