"""Alerts pushed out through Apprise (`[notify]` of `edge station --config`), to a real HTTP server on 127.0.0.1
as the service: a box's alert arrives with its class and box; per box and class at most one in the interval and
at most max_per_interval over all boxes, the others counted in the next one; an alert delivered again is not sent
again; a service that refuses or hangs does not hold up the records; what the box wrote arrives as plain text; a
URL's token never reaches the logs or an error message."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest

from edge.station.messages import Record, parse
from edge.station.notice import RateLimit, TotalLimit, compose, plain
from edge.station.notify import Notifier, NotifySettings
from edge.station.settings import SettingsError, load_settings
from support import paths
from support.broker import Mosquitto
from support.config import write_config
from support.hook import Hook
from support.processes import DaemonProcess, StationProcess, edge_cli
from support.records import query, read_records
from support.waiting import wait_for

GOLDEN = json.loads((paths.GOLDEN / "alert_v2.json").read_text())
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TOKEN = "s3cr3tT0ken"


def utc(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def alert(alert_id: str, alert_class: str = "Gun", box: str = "box-a", seconds: float = 0.0, seq: int = 1) -> dict:
    """An edge.alert/2 record, as a box publishes it."""
    return {
        **GOLDEN,
        "id": alert_id,
        "box": box,
        "alert_class": alert_class,
        "common_name": alert_class,
        "scientific_name": alert_class,
        "start_s": seconds,
        "end_s": seconds + 5.0,
        "start_utc": utc(seconds),
        "end_utc": utc(seconds + 5.0),
        "detected_utc": utc(seconds + 5.5),
        "seq": seq,
    }


def record(payload: dict) -> Record:
    return parse(payload["box"], "alerts", json.dumps(payload).encode(), utc(60))


def publish(broker: Mosquitto, *messages: tuple[str, dict]) -> None:
    """(topic, payload) in order from one client, QoS 1, as a box sends: the station receives them in order."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


def station_config(tmp_path, urls: list[str], **notify) -> str:
    path = tmp_path / "station.toml"
    lines = ["[notify]", f"urls = {json.dumps(urls)}"] + [f"{k} = {json.dumps(v)}" for k, v in notify.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def broker(tmp_path):
    mosquitto = Mosquitto(tmp_path / "broker").start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def hook():
    with Hook() as server:
        yield server


def test_the_rate_limit_lets_one_through_per_key_and_interval_and_counts_the_rest():
    limit = RateLimit(600)
    gun_a, saw_a, gun_b = ("box-a", "Gun"), ("box-a", "Power tools"), ("box-b", "Gun")
    assert limit.offer(gun_a, 1000.0, T0) == (0, None)
    assert limit.offer(gun_a, 1001.0) is None and limit.offer(gun_a, 1599.9) is None
    assert limit.held(gun_a) == 2
    assert limit.offer(saw_a, 1599.9) == (0, None) and limit.offer(gun_b, 1599.9) == (0, None)
    assert limit.offer(gun_a, 1600.0, T0 + timedelta(minutes=10)) == (2, T0)
    assert limit.held(gun_a) == 0 and limit.offer(gun_a, 1700.0) is None
    assert RateLimit(0).offer(gun_a, 5.0) == (0, None) == RateLimit(0).offer(gun_a, 5.0)


def test_the_total_limit_lets_so_many_through_in_any_interval_over_all_keys_and_counts_the_rest():
    total = TotalLimit(3, 600)
    for now in (1000.0, 1001.0, 1002.0):
        assert not total.full(now)
        assert total.let(now) == (0, None)
    assert total.full(1003.0) and total.full(1599.9)
    assert total.hold(T0 + timedelta(seconds=9)) == 1 and total.hold(T0) == 2 and total.hold(None) == 3
    assert not total.full(1600.0), "the first of the three is 600 s old"
    assert total.let(1600.0) == (3, T0), "counted, with the earliest heard"
    assert total.full(1600.5) and not total.full(1601.0)
    assert total.let(1601.0) == (0, None)
    unlimited = TotalLimit(1, 0)
    unlimited.let(5.0)
    assert not unlimited.full(5.0), "an interval of 0: every alert"


def test_the_rate_limit_forgets_the_oldest_keys_beyond_its_bound():
    limit = RateLimit(600, max_keys=3)
    for box in "abcd":
        limit.offer((box, "Gun"), 0.0)
    assert limit.offer(("a", "Gun"), 1.0) == (0, None), "box a was forgotten: let through"
    assert limit.offer(("d", "Gun"), 1.0) is None


def test_the_message_is_plain_text_cut_short_and_says_what_was_held():
    text = "Gun\u202e\u200b\x07 shot  \n" + "x" * 100
    assert plain(text) == "Gun shot " + "x" * 54 + "…" and len(plain(text)) == 64
    payload = {**alert("a1", alert_class="Gun\u202egnp.exe"), "confidence": 0.876}
    notice = compose(
        Record("box-a", "alerts", "k", 1, payload, "", utc(60)),
        held=3,
        since=T0 - timedelta(minutes=20),
        page_url="https://station.example.org/",
        zone=timezone(timedelta(hours=-5), "COT"),
    )
    assert notice.title == "Gungnp.exe at box-a"
    assert notice.body.splitlines() == [
        "Gungnp.exe heard by box box-a, confidence 88%",
        "2026-11-23 09:00:00 UTC, 04:00:00 COT at the station",
        "and 3 more since 08:40:00 UTC",
        "https://station.example.org/alerts?box=box-a&id=a1",
    ]


def test_held_alerts_are_counted_in_the_next_one_after_the_interval(hook):
    """The clock is the test's: the verdicts do not depend on how fast anything runs."""
    now = [1000.0]
    notifier = Notifier(NotifySettings(urls=[hook.url()], min_interval_s=600), clock=lambda: now[0])
    notifier.start()
    try:
        notifier.alert(record(alert("a1", seconds=0)))
        assert hook.wait_notices(1)[0]["title"] == "Gun at box-a"
        for number, step in enumerate((300.0, 299.0), 2):
            now[0] += step
            notifier.alert(record(alert(f"a{number}", seconds=now[0] - 1000)))
        assert notifier.limit.held(("box-a", "Gun")) == 2
        now[0] += 1.0  # 600 s after the first
        notifier.alert(record(alert("a4", seconds=600)))
        notifier.alert(record(alert("a1", seconds=0)))  # the first again: not sent again, not counted
        notifier.alert(record(alert("b1", alert_class="Power tools", seconds=601)))
        first, fourth, saw = hook.wait_notices(3)
    finally:
        notifier.stop()
    assert "and 2 more since 09:00:00 UTC" in fourth["message"] and "more" not in first["message"]
    assert fourth["message"].startswith("Gun heard by box box-a") and "2026-11-23 09:10:00 UTC" in fourth["message"]
    assert saw["title"] == "Power tools at box-a" and "more" not in saw["message"]
    assert len(hook.requests) == 3 and notifier.dropped == 0


def test_at_most_max_per_interval_over_all_boxes_and_the_rest_said_in_the_next_one(hook):
    """Boxes made up one per alert (each its own box and class, so the limit per box and class holds none
    back): three go out, the others are counted and said in the next message after the interval. An alert
    the limit per box and class holds back is not counted again."""
    now = [1000.0]
    settings = NotifySettings(urls=[hook.url()], min_interval_s=600, max_per_interval=3)
    notifier = Notifier(settings, clock=lambda: now[0])
    notifier.start()
    try:
        for number in range(6):
            notifier.alert(record(alert(f"x{number}", box=f"made-up-{number}", seconds=number)))
        notifier.alert(record(alert("x0-again", box="made-up-0", seconds=10)))  # held for its box and class
        assert hook.wait_notices(3) and notifier.total.held == 3 and notifier.limit.held(("made-up-0", "Gun")) == 1
        now[0] += 600.0
        notifier.alert(record(alert("y", box="box-a", seconds=600)))
        notifier.alert(record(alert("x0-later", box="made-up-0", seconds=601)))
        notices = hook.wait_notices(5)
    finally:
        notifier.stop()
    assert [n["title"] for n in notices] == [
        "Gun at made-up-0",
        "Gun at made-up-1",
        "Gun at made-up-2",
        "Gun at box-a",
        "Gun at made-up-0",
    ]
    assert "3 more alerts of any box not sent since 09:00:03 UTC: too many at once" in notices[3]["message"]
    assert "and 1 more since 09:00:00 UTC" in notices[4]["message"] and "any box" not in notices[4]["message"]
    assert all("any box" not in n["message"] for n in notices[:3])
    assert len(hook.requests) == 5 and notifier.total.held == 0


def test_an_alert_heard_by_a_box_reaches_the_rangers(broker, hook, tmp_path, data):
    """A box hears hand claps (BirdNET scores them as "Power tools" and "Fireworks"), alerts through the
    broker, and the station pushes each alert to the service with its class, box, confidence and link."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(data / "perch_clap.wav", inbox)
    box = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": str(inbox), "settle_seconds": 0.2},
        mqtt={"host": "127.0.0.1", "port": broker.port},
        alerts={"classes": [{"name": "Power tools", "threshold": 0.3}, {"name": "Fireworks", "threshold": 0.15}]},
        box_id="wetland-03",
    )
    config = station_config(tmp_path, [hook.url()], page_url="http://station.test:8080")
    station = StationProcess(broker, tmp_path / "station.sqlite", "--config", config)
    daemon = None
    try:
        station.wait_log("station_subscribed")
        daemon = DaemonProcess(box)
        daemon.wait_log("recording_done", file="perch_clap.wav")
        alerts = read_records(tmp_path / "data" / "records", "alerts")
        assert sorted(a["alert_class"] for a in alerts) == ["Fireworks", "Power tools"]
        notices = hook.wait_notices(len(alerts), timeout=120)
        assert daemon.terminate(timeout=60)[0] == 0
        assert station.terminate() == 0
    finally:
        if daemon is not None:
            daemon.close()
        station.close()
    by_title = {n["title"]: n for n in notices}
    for sent in alerts:
        notice = by_title[f"{sent['alert_class']} at wetland-03"]
        assert notice["type"] == "warning"
        heard = f"{sent['alert_class']} heard by box wetland-03, confidence {sent['confidence']:.0%}"
        assert notice["message"].startswith(heard)
        assert f"http://station.test:8080/alerts?box=wetland-03&id={sent['id']}" in notice["message"]
    assert len(hook.requests) == len(alerts)
    assert {e["id"] for e in station.logged("notify_sent")} == {a["id"] for a in alerts}


def test_one_per_box_and_class_in_the_interval_and_none_for_an_alert_sent_again(broker, hook, tmp_path):
    """In order from one box: the second Gun of box-a within the interval is held; another class or another
    box goes at once; an edge.alert/1 alert (a copy of its event: start, then end, one id) is sent once; a
    record delivered again (a new seq) nothing. The last alert's arrival shows every one before it decided."""
    config = station_config(tmp_path, [hook.url()], min_interval_s=3600)
    db = tmp_path / "station.sqlite"
    station = StationProcess(broker, db, "--config", config)
    first = alert("gun-1", seconds=0, seq=1)
    v1 = {**alert("v1", alert_class="Chainsaw", seconds=30, seq=4), "schema": "edge.alert/1", "kind": "start"}
    for field in ("alert_class", "threshold", "held_back", "detected_utc"):
        del v1[field]
    try:
        station.wait_log("station_subscribed")
        publish(
            broker,
            ("edge/box-a/alerts", first),
            ("edge/box-a/alerts", alert("gun-2", seconds=10, seq=2)),
            ("edge/box-a/alerts", {**first, "seq": 3}),
            ("edge/box-a/alerts", v1),
            ("edge/box-a/alerts", {**v1, "kind": "end", "end_s": 40.0, "seq": 5}),
            ("edge/box-a/alerts", alert("saw-1", alert_class="Power tools", seconds=20, seq=6)),
            ("edge/box-b/alerts", alert("gun-b", box="box-b", seconds=25, seq=1)),
            ("edge/box-a/alerts", alert("last", alert_class="Fireworks", seconds=50, seq=7)),
        )
        notices = hook.wait_notices(5)
        held = station.wait_log("notify_held")
        wait_for(lambda: len(query(db, "SELECT * FROM records")) == 7, what="the records stored")
        assert station.terminate() == 0
    finally:
        station.close()
    assert [n["title"] for n in notices] == [
        "Gun at box-a",
        "Chainsaw at box-a",
        "Power tools at box-a",
        "Gun at box-b",
        "Fireworks at box-a",
    ]
    assert (held["id"], held["held"]) == ("gun-2", 1)
    assert len(hook.requests) == 5 and len(station.logged("notify_held")) == 1


def test_a_script_in_a_class_name_arrives_as_text_and_markdown_services_get_it_escaped(broker, tmp_path):
    """json:// receives the text as the box wrote it (JSON, not markup); an ntfy topic that renders
    Markdown receives it escaped, so that neither the link nor the emphasis is made of it."""
    name = "<script>alert(1)</script> [x](http://evil.test) *b*"
    with Hook() as hook, Hook() as ntfy:
        urls = [hook.url(), ntfy.url("ntfy", "rangers") + "?format=markdown"]
        station = StationProcess(broker, tmp_path / "station.sqlite", "--config", station_config(tmp_path, urls))
        try:
            station.wait_log("station_subscribed")
            publish(broker, ("edge/box-a/alerts", alert("x1", alert_class=name)))
            (notice,) = hook.wait_notices(1)
            wait_for(lambda: ntfy.requests, what="the ntfy request")
            assert station.terminate() == 0
        finally:
            station.close()
    assert notice["title"] == f"{name} at box-a"
    assert notice["message"].startswith(f"{name} heard by box box-a")
    request = ntfy.requests[0]
    message = json.loads(request["body"])["message"]
    assert request["headers"]["X-Markdown"] == "yes"
    assert r"\[x\]\(http://evil\.test\) \*b\*" in message and "[x](" not in message


def test_a_service_that_refuses_or_hangs_holds_up_no_record_and_no_token_is_logged(broker, tmp_path):
    """The hanging service answers nothing, and its URL asks for a read timeout longer than the station's own
    (15 s): were alerts sent on the MQTT thread, each would hold the records back that long. The station stops
    while a notice hangs."""
    db = tmp_path / "station.sqlite"
    with Hook("refuse") as refusing, Hook("hang") as hanging:
        urls = [refusing.url(credentials=f"ranger:{TOKEN}@"), hanging.url(path=f"hook/{TOKEN}") + "?rto=600"]
        station = StationProcess(broker, db, "--config", station_config(tmp_path, urls, min_interval_s=0))
        try:
            station.wait_log("station_subscribed")
            publish(broker, ("edge/box-a/alerts", alert("a0", seq=1)))
            failed = station.wait_log("notify_failed", url="url #1 (json://127.0.0.1)")
            assert failed["reason"] == "failure" and failed["id"] == "a0"
            wait_for(lambda: hanging.requests, what="the hanging service reached")
            classes = ["Power tools", "Fireworks", "Chainsaw"]
            publish(broker, *[("edge/box-a/alerts", alert(f"a{i}", c, seq=i + 1)) for i, c in enumerate(classes, 1)])
            wait_for(lambda: len(query(db, "SELECT * FROM detections")) == 4, timeout=20, what="every alert stored")
            assert station.terminate() == 0
        finally:
            station.close()
    assert station.logged("notify_unsent"), "stopped while a notice was being sent"
    output = json.dumps(station.lines) + station.stderr_now()
    assert TOKEN not in output
    assert refusing.requests[0]["headers"]["Authorization"].startswith("Basic ")  # the token was sent, not shown
    assert hanging.requests[0]["path"] == f"/hook/{TOKEN}"


def test_an_unknown_url_scheme_is_a_usage_error_that_names_its_place_not_its_token(tmp_path):
    config = station_config(tmp_path, ["ntfys://ntfy.sh/rangers", f"ntfyy://{TOKEN}@ntfy.sh/rangers"])
    db = tmp_path / "station.sqlite"
    result = edge_cli("station", "--broker", "127.0.0.1:1", "--db", str(db), "--config", config, check=False)
    assert result.returncode == 2
    assert "notify.urls: url #2 is no URL of a service Apprise knows" in result.stderr
    assert TOKEN not in result.stdout + result.stderr and not db.exists()


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[notify]\nurl = ["json://{token}@127.0.0.1/hook"]', "notify.url: Extra inputs are not permitted"),
        ('[notfy]\nurls = ["json://{token}@127.0.0.1/hook"]', "notfy: Extra inputs are not permitted"),
        ('[notify]\nurls = "json://{token}@127.0.0.1/hook"', "notify.urls: Input should be a valid list"),
        ('[notify]\npage_url = "javascript:{token}"', "notify.page_url: is not an http:// or https:// address"),
        ("[notify]\nmin_interval_s = -1", "notify.min_interval_s: Input should be greater than or equal to 0"),
        ('[notify]\nurls = ["json://{token}@127.0.0.1/hook"', "is not valid TOML: Unclosed array"),
    ],
)
def test_a_configuration_error_names_the_key_never_the_value(tmp_path, toml, named):
    path = tmp_path / "station.toml"
    path.write_text(toml.format(token=TOKEN))
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    assert named in str(raised.value) and TOKEN not in str(raised.value)


def test_the_example_configuration_loads_and_its_example_urls_are_ones_apprise_knows():
    example = paths.ROOT / "config" / "station.toml"
    assert load_settings(example).notify.urls == []
    block = re.search(r"^# urls = \[\n(.*?)^# \]", example.read_text(), flags=re.S | re.M)
    assert block, "the example has a commented urls list"
    urls = re.findall(r'^#\s+"([^"]+)"', block.group(1), flags=re.M)
    assert len(urls) >= 3 and {"ntfys", "tgram"} <= {u.split("://")[0] for u in urls}
    assert len(NotifySettings(urls=urls).urls) == len(urls)
