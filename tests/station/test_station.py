"""`edge station` against a real mosquitto: every record once, whatever MQTT repeats or reorders, across station
stops and kills, broker restarts, and boxes that vanish."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from rich.console import Console

from edge.cli.main import main
from edge.station import reviews
from edge.station.app import broker_address
from edge.station.messages import RecordError, parse
from edge.station.store import Store, connect
from edge.station.subscriber import StationOptions, Subscriber, default_client_id
from edge.station.table import box_lines, render
from edge.wire.mqtt import BrokerConfig
from support.broker import Mosquitto
from support.certificates import make_certificates
from support.processes import StationProcess
from support.records import query
from support.waiting import wait_for

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def utc(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def event(
    event_id: str,
    kind: str,
    seq: int,
    start_s: float,
    end_s: float,
    confidence: float = 0.8,
    name: str = "Eurasian Wren",
    schema: str = "edge.event/1",
    box: str = "box-a",
) -> dict:
    return {
        "schema": schema,
        "id": event_id,
        "kind": kind,
        "box": box,
        "source": "rec/20261123_090000.wav",
        "start_s": start_s,
        "end_s": end_s,
        "start_utc": utc(start_s),
        "end_utc": utc(end_s),
        "scientific_name": f"{name} (sci)",
        "common_name": name,
        "label": name,
        "confidence": confidence,
        "model": "birdnet-v2.4",
        "model_version": "2.4",
        "seq": seq,
    }


def health(seq: int, seconds: float, box: str = "box-a", **fields) -> dict:
    return {
        "schema": "edge.health/1",
        "box": box,
        "time_utc": utc(seconds),
        "uptime_s": seconds,
        "real_time_factor": 0.05,
        "outbox_pending": 0,
        "disk_free_percent": 71.5,
        "seq": seq,
        **fields,
    }


class Box:
    """Publishes as a box does: QoS 1, on <prefix>/<box>/<kind>."""

    def __init__(self, broker: Mosquitto, box: str = "box-a", username: str | None = None, password: str | None = None):
        self.box = box
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(self, kind: str, *payloads: dict, retain: bool = False) -> None:
        infos = [self.client.publish(f"edge/{self.box}/{kind}", json.dumps(p), qos=1, retain=retain) for p in payloads]
        for info in infos:
            info.wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def count(db_path: Path, sql: str, *params) -> int:
    rows = query(db_path, sql, *params)
    return rows[0][0] if rows else 0


def seqs_seen(db_path: Path, box: str = "box-a") -> set[int]:
    return {row[0] for row in query(db_path, "SELECT seq FROM seqs WHERE box = ?", box)}


@contextmanager
def station_thread(broker: Mosquitto, db_path: Path, protocol: str = "auto", client_id: str = "station-test"):
    """The station's subscriber on a thread of the test, as `edge station` runs it."""
    store = Store.open(db_path)
    config = BrokerConfig(host="127.0.0.1", port=broker.port, protocol=protocol)
    subscriber = Subscriber(config, StationOptions(client_id=client_id, first_retry_s=0.1, max_retry_s=0.5), store)
    stop = threading.Event()
    thread = threading.Thread(target=subscriber.run, args=(stop,))
    thread.start()
    try:
        assert subscriber.subscribed.wait(10), "the station did not subscribe"
        yield subscriber
    finally:
        stop.set()
        thread.join(timeout=10)
        store.close()
    assert not thread.is_alive()


def test_duplicates_are_stored_once(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    start = event("e1", "start", 1, 10.0, 12.5)
    with station_thread(broker, db):
        box = Box(broker)
        # redelivered as it was; then re-published after a crash of the box: new seq, same id, kind and end
        box.send("events", start, start, {**start, "seq": 2}, event("e1", "end", 3, 10.0, 17.5))
        box.send("health", health(4, 60), health(4, 60), {**health(4, 60), "seq": 5}, health(6, 120))
        wait_for(lambda: seqs_seen(db) == {1, 2, 3, 4, 5, 6}, what="every seq")
        box.close()
    kinds = query(db, "SELECT kind, count(*) FROM records GROUP BY kind ORDER BY kind")
    assert [tuple(row) for row in kinds] == [("events", 2), ("health", 2)]
    row = query(db, "SELECT * FROM detections")[0]
    assert (row["id"], row["records"], row["first_seq"], row["state"]) == ("e1", 2, 1, "ended")
    b = query(db, "SELECT * FROM boxes")[0]
    assert (b["seq_min"], b["seq_max"], b["missing_seq"]) == (1, 6, 0)
    assert json.loads(b["health"])["time_utc"] == utc(120)


def test_events_built_whatever_the_arrival_order_and_missing_seqs_counted(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    with station_thread(broker, db):
        box = Box(broker)
        box.send(
            "events",
            event("e2", "end", 12, 10.0, 20.0, 0.7),
            event("e2", "update", 11, 10.0, 15.0, 0.9),
            event("e2", "start", 10, 10.0, 12.5, 0.6),
        )
        threat = dict(name="Gunshot", schema="edge.alert/1")
        box.send(
            "alerts",
            event("a1", "update", 16, 30.0, 35.0, 0.95, **threat),
            event("a1", "start", 13, 30.0, 32.5, 0.5, **threat),
        )
        box.send("health", health(9, 300), health(8, 240))  # a backlog behind the live record
        wait_for(lambda: seqs_seen(db) == {8, 9, 10, 11, 12, 13, 16}, what="every seq")
        box.close()
    rows = {row["id"]: row for row in query(db, "SELECT * FROM detections")}
    e2 = rows["e2"]
    assert (e2["start_s"], e2["end_s"], e2["start_utc"], e2["end_utc"]) == (10.0, 20.0, utc(10), utc(20))
    assert (e2["max_confidence"], e2["state"], e2["first_seq"], e2["alert"]) == (0.9, "ended", 10, 0)
    a1 = rows["a1"]
    assert (a1["alert"], a1["state"], a1["end_s"], a1["first_seq"], a1["common_name"]) == (
        1,
        "open",
        35.0,
        13,
        "Gunshot",
    )
    b = query(db, "SELECT * FROM boxes")[0]
    assert (b["missing_seq"], json.loads(b["health"])["seq"]) == (2, 9)  # 14 and 15; the newest health kept


def test_a_stopped_then_killed_station_gets_everything_published_meanwhile(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    box = Box(broker)
    station = StationProcess(broker, db)
    station.wait_log("station_subscribed")
    box.send("events", event("e0", "start", 1, 0.0, 2.5))
    wait_for(lambda: count(db, "SELECT count(*) FROM records"), what="the first record")
    assert station.wait_log("event_stored", id="e0", seq=1)
    assert station.terminate() == 0

    box.send("events", *[event(f"s{i}", "start", 2 + i, i, i + 2.5) for i in range(20)])  # while it is off
    station = StationProcess(broker, db)
    assert station.wait_log("broker_connected")["session_present"] is True
    wait_for(lambda: count(db, "SELECT count(*) FROM records") == 21, what="the records sent while stopped")

    # kill -9 in the middle of a stream: what was committed was acknowledged, the rest comes again
    later = [event(f"k{i}", "start", 22 + i, i, i + 2.5) for i in range(400)]
    sender = threading.Thread(target=box.send, args=("events", *later))
    sender.start()
    wait_for(lambda: count(db, "SELECT count(*) FROM records") >= 40, what="some of the stream")
    station.kill()
    sender.join(timeout=30)
    station = StationProcess(broker, db)
    wait_for(lambda: count(db, "SELECT count(*) FROM records") == 421, timeout=30, what="the whole stream")
    assert station.terminate() == 0
    box.close()
    assert count(db, "SELECT count(*) FROM detections") == 421
    assert tuple(query(db, "SELECT missing_seq, seq_max FROM boxes")[0]) == (0, 421)


def test_station_reconnects_after_a_broker_restart(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    with station_thread(broker, db) as subscriber:
        box = Box(broker)
        box.send("events", event("before", "start", 1, 0, 2.5))
        wait_for(lambda: count(db, "SELECT count(*) FROM records") == 1, what="the first record")
        box.close()
        broker.stop()
        wait_for(lambda: not subscriber.subscribed.is_set(), what="the station noticing")
        broker.start()
        box = Box(broker)  # at once: the broker queues it in the station's kept session if need be
        box.send("events", event("after", "start", 2, 2.5, 5))
        wait_for(lambda: count(db, "SELECT count(*) FROM records") == 2, what="the record after the restart")
        assert subscriber.subscribed.wait(10)
        box.close()


def test_a_record_the_database_cannot_take_comes_again(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    with station_thread(broker, db) as subscriber:
        other_writer = sqlite3.connect(db, isolation_level=None)
        other_writer.execute("BEGIN IMMEDIATE")  # holds the database beyond the station's busy timeout
        box = Box(broker)
        box.send("events", event("held", "start", 1, 0, 2.5))
        wait_for(lambda: not subscriber.subscribed.is_set(), what="the station letting the record go")
        other_writer.execute("ROLLBACK")
        other_writer.close()
        wait_for(lambda: count(db, "SELECT count(*) FROM records") == 1, what="the record, sent again")
        box.close()


def test_status_online_offline_and_stopped(broker, tmp_path):
    db = tmp_path / "station.sqlite"

    def status(state):
        return {
            "schema": "edge.status/1",
            "box": "box-s",
            "state": state,
            "time_utc": datetime.now(UTC).isoformat(),
            "version": "0.1.0",
        }

    # A box with a last will, started before the station: the station learns its status from the retained one.
    script = f"""
import json, sys, time
import paho.mqtt.client as mqtt
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="box-s", protocol=mqtt.MQTTv5)
client.will_set("edge/box-s/status", {json.dumps(json.dumps(status("offline")))}, qos=1, retain=True)
client.connect("127.0.0.1", {broker.port}, keepalive=60)
client.loop_start()
client.publish("edge/box-s/status", {json.dumps(json.dumps(status("online")))}, qos=1, retain=True).wait_for_publish()
print("ready", flush=True)
time.sleep(60)
"""
    box_process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert box_process.stdout.readline().strip() == "ready"
        with station_thread(broker, db):
            state = lambda: query(db, "SELECT status, last_seen_utc FROM boxes WHERE box = 'box-s'")  # noqa: E731
            wait_for(lambda: state() and state()[0]["status"] == "online", what="online")
            assert state()[0]["last_seen_utc"] is None  # the broker's memory, not the box speaking
            box_process.kill()  # its socket dies with it: the broker publishes the will
            wait_for(lambda: state()[0]["status"] == "offline", what="offline")
            box = Box(broker, "box-s")
            box.send("status", status("online"), retain=True)
            box.send(
                "health",
                {
                    "schema": "edge.health/1",
                    "box": "box-s",
                    "seq": 1,
                    "outbox_pending": 3,
                    "time_utc": datetime.now(UTC).isoformat(),
                },
            )
            # A clean stop drains the outbox after the last health record: the status has the final figure.
            box.send("status", {**status("stopped"), "outbox_pending": 0, "mqtt_sent": 4}, retain=True)
            wait_for(lambda: state()[0]["status"] == "stopped", what="stopped")
            assert state()[0]["last_seen_utc"] is not None
            db_read = connect(db, read_only=True)
            (line,) = box_lines(db_read, datetime.now(UTC))
            db_read.close()
            assert line.outbox_pending == 0, "the stopped status's figure, not the older health record's"
            box.close()
    finally:
        box_process.kill()
        box_process.wait()
    assert count(db, "SELECT count(*) FROM records WHERE kind = 'status'") == 4


def test_a_second_station_with_the_same_client_id_is_named_as_the_cause(broker, tmp_path):
    """Two stations under one client id take the session from each other: each says so in words and backs
    off, and the default client id differs for stations with different databases on one host."""
    assert default_client_id(tmp_path / "a.sqlite") != default_client_id(tmp_path / "b.sqlite")
    assert default_client_id(tmp_path / "a.sqlite") == default_client_id(tmp_path / "." / "a.sqlite")
    first = StationProcess(broker, tmp_path / "a.sqlite")
    try:
        first.wait_log("station_subscribed")
        second = StationProcess(broker, tmp_path / "b.sqlite")
        try:
            taken = first.wait_log("session_taken_over", timeout=60)
            assert "Give each station its own --client-id" in taken["error"]
        finally:
            second.terminate()
    finally:
        first.terminate()


def test_a_3_1_1_station_keeps_its_session(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    with station_thread(broker, db, protocol="3.1.1"):
        pass
    box = Box(broker)
    box.send("events", event("e", "start", 1, 0, 2.5))
    with station_thread(broker, db, protocol="3.1.1"):
        wait_for(lambda: count(db, "SELECT count(*) FROM records") == 1, what="the record sent while stopped")
    box.close()


def test_tls_with_a_client_certificate_and_a_password_refused_in_words(tmp_path):
    certificates = make_certificates(tmp_path / "tls")
    broker = Mosquitto(
        tmp_path / "broker",
        users={"station": "right", "box": "b"},
        tls={k: certificates[k] for k in ("ca", "cert", "key")},
    ).start()
    password = tmp_path / "password"
    password.write_text("wrong\n")
    tls = [
        "--ca-file",
        str(certificates["ca"]),
        "--cert-file",
        str(certificates["client_cert"]),
        "--key-file",
        str(certificates["client_key"]),
        "--username",
        "station",
        "--password-file",
        str(password),
    ]
    db = tmp_path / "station.sqlite"
    try:
        station = StationProcess(broker, db, *tls, port=broker.tls_port)
        assert "user name or password" in station.wait_log("broker_refused")["reason"]
        station.wait_log("broker_retry")
        assert station.terminate() == 0
        password.write_text("right\n")
        station = StationProcess(broker, db, *tls, port=broker.tls_port)
        station.wait_log("station_subscribed")
        box = Box(broker, username="box", password="b")
        box.send("events", event("tls", "start", 1, 0, 2.5))
        wait_for(lambda: count(db, "SELECT count(*) FROM records") == 1, what="the record over TLS")
        assert station.terminate() == 0
        box.close()
    finally:
        broker.stop()


def filled_store(db_path: Path) -> None:
    """A database as a station fills it, without a broker: the store is what is tested here."""
    store = Store.open(db_path)
    records = [
        ("box-b", "events", event("b1", "start", 5, 0.0, 2.5, box="box-b", name="Robin")),
        ("box-a", "events", event("a2", "end", 9, 40.0, 45.0, 0.6)),
        ("box-a", "alerts", event("a1", "start", 3, 3.0, 5.5, 0.9, name="Chainsaw", schema="edge.alert/1")),
        ("box-a", "events", event("a1", "start", 4, 3.0, 5.5, 0.9, name="Chainsaw")),  # its event record
        ("box-a", "events", {**event("a0", "start", 7, 0.0, 2.5), "start_utc": None, "end_utc": None}),
        ("box-a", "health", health(8, 60)),
    ]
    for box, kind, payload in records:
        store.add(parse(box, kind, json.dumps(payload).encode(), utc(0)))
    store.close()


def export(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["station", "export", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_export_csv(tmp_path):
    db = tmp_path / "station.sqlite"
    Store.open(db).close()
    result = CliRunner().invoke(main, ["station", "export", "--db", str(db)])
    assert result.stdout.splitlines()[0].startswith("box,id,alert,scientific_name,common_name,start_utc")
    filled_store(db)
    rows = export("--db", str(db), "--out", "-")
    assert [(r["box"], r["id"], r["first_seq"]) for r in rows] == [
        ("box-a", "a1", "3"),
        ("box-a", "a0", "7"),
        ("box-a", "a2", "9"),
        ("box-b", "b1", "5"),
    ]
    a1 = rows[0]
    assert (a1["alert"], a1["common_name"], a1["state"], a1["max_confidence"], a1["start_utc"]) == (
        "1",
        "Chainsaw",
        "open",
        "0.9",
        utc(3),
    )
    assert (rows[2]["state"], rows[2]["end_s"], rows[2]["source"]) == ("ended", "45.0", "rec/20261123_090000.wav")
    assert [r["id"] for r in export("--db", str(db), "--box", "box-b")] == ["b1"]
    # a0 has no recording time: the station's receipt counts
    assert [r["id"] for r in export("--db", str(db), "--since", "2026-11-23")] == ["a1", "a0", "a2", "b1"]
    assert export("--db", str(db), "--since", "2026-11-24") == []
    out = tmp_path / "events.csv"
    export("--db", str(db), "--out", str(out))
    assert len(list(csv.DictReader(out.open(newline="")))) == 4
    records = export("--db", str(db), "--records", "--box", "box-a")
    assert [(r["kind"], r["seq"]) for r in records] == [
        ("alerts", "3"),
        ("events", "4"),
        ("events", "7"),
        ("health", "8"),
        ("events", "9"),
    ]
    assert json.loads(records[3]["payload"])["schema"] == "edge.health/1"


def test_export_carries_the_marks(tmp_path):
    db = tmp_path / "station.sqlite"
    filled_store(db)
    store = Store.open(db)
    with store.transaction():
        reviews.mark(store.db, "box-a", "a2", "false", "rain on the microphone", "ana")
        reviews.mark(store.db, "box-a", "a0", "confirmed", "", "bo")
        reviews.mark(store.db, "box-a", "a0", "cleared", "", "bo")  # taken back: no mark
        reviews.acknowledge(store.db, "box-a", "a1", "bo")
    store.close()
    rows = {r["id"]: r for r in export("--db", str(db))}
    assert list(rows["a2"])[-5:] == ["verdict", "note", "reviewer", "reviewed_utc", "acknowledged_by"]
    assert (rows["a2"]["verdict"], rows["a2"]["note"], rows["a2"]["reviewer"]) == (
        "false",
        "rain on the microphone",
        "ana",
    )
    assert rows["a2"]["reviewed_utc"].endswith("+00:00")
    assert (rows["a0"]["verdict"], rows["a0"]["reviewer"]) == ("", "")
    assert (rows["a1"]["acknowledged_by"], rows["b1"]["acknowledged_by"]) == ("bo", "")
    # A database the station has not opened since marks came has none to export, and still exports.
    old = sqlite3.connect(db)
    old.executescript("DROP VIEW marks; DROP TABLE reviews; DROP TABLE acknowledgements; PRAGMA user_version = 3;")
    old.close()
    rows = {r["id"]: r for r in export("--db", str(db))}
    assert len(rows) == 4 and rows["a2"]["verdict"] == "" and rows["a1"]["acknowledged_by"] == ""


def test_table_shows_boxes(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")  # "today" is the station's local day
    time.tzset()
    db = tmp_path / "station.sqlite"
    filled_store(db)
    store = Store.open(db)
    lines = box_lines(store.db, T0 + timedelta(hours=1))
    store.close()
    assert [(line.box, line.recent_species, line.missing_seq) for line in lines] == [
        ("box-a", ("Eurasian Wren", "Chainsaw"), 2),
        ("box-b", ("Robin",), 0),
    ]
    assert (lines[0].events_today, lines[0].alerts_today, lines[0].disk_free_percent) == (2, 1, 71.5)
    console = Console(file=io.StringIO(), width=160)
    console.print(render(lines, T0 + timedelta(hours=1)))
    text = console.file.getvalue()
    assert "box-a" in text and "Eurasian Wren, Chainsaw" in text and "72%" in text


def test_payloads_checked():
    bad = [
        ("events", b"\xff"),
        ("events", b"[1]"),
        ("health", b'{"no": "schema"}'),
        ("events", event("x", "begin", 1, 0, 1)),
        ("alerts", {**event("x", "start", 1, 0, 1), "end_s": None}),
        ("events", {**event("x", "start", 1, 0, 1), "seq": "7"}),
        ("events", {**event("x", "end", 1, 0, 1), "id": ""}),
        ("health", {**health(1, 0), "time_utc": None}),
        ("status", {"schema": "edge.status/1", "state": "gone"}),
    ]
    for kind, payload in bad:
        with pytest.raises(RecordError):
            parse("b", kind, payload if isinstance(payload, bytes) else json.dumps(payload).encode(), utc(0))
    assert (
        parse("box-a", "events", json.dumps(event("x", "end", 1, 0, 17)).encode(), utc(0)).key
        == parse("box-a", "events", json.dumps(event("x", "end", 2, 0, 17.0)).encode(), utc(0)).key
    )


def test_broker_address():
    assert broker_address("station.lan") == ("station.lan", None)
    assert broker_address("10.0.0.5:8883") == ("10.0.0.5", 8883)
    assert broker_address("[fd00::1]:1884") == ("fd00::1", 1884)
    assert broker_address("fd00::1") == ("fd00::1", None)
    with pytest.raises(ValueError):
        broker_address("host:port")


def test_cli_needs_broker_and_db(tmp_path):
    result = CliRunner().invoke(main, ["station", "--db", "x.sqlite"])
    assert result.exit_code == 2 and "--broker and --db are required" in result.output
    assert "export" in CliRunner().invoke(main, ["station", "--help"]).output
    db = tmp_path / "station.sqlite"
    result = CliRunner().invoke(main, ["station", "--broker", "localhost", "--db", str(db), "--prefix", "a/+"])
    assert result.exit_code == 2 and "Invalid value for --prefix: topic prefix 'a/+' holds '+'" in result.output
    assert not db.exists()
