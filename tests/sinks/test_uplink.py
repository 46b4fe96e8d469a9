"""The uplink against a real mosquitto: broker outages, kill -9, TLS and credentials, the status topic."""

from __future__ import annotations

import json
import random
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import soundfile

from edge.sinks.outbox import Outbox
from support.broker import Mosquitto, OldBroker, Relay, Subscriber
from support.certificates import make_certificates
from support.config import write_config
from support.paths import ROOT
from support.processes import DaemonProcess, StationProcess
from support.records import query, read_records
from support.waiting import wait_for, wait_for_progress

RECORDINGS = [
    "maad_spinetail.wav",
    "opso_birds_10s.wav",
    "pheasantCoucal_file0123.wav",
    "birdvox_warblr_fd79e55d_POSITIVE.wav",
    "opso_great_plains_toad.wav",
    "S4A03895_20190522_120000.wav",
]


def recordings(data, folder):
    """110 s of real recordings named as a recorder names them, one hour apart."""
    folder.mkdir()
    for i, name in enumerate(RECORDINGS):
        shutil.copy(data / name, folder / f"20240501_{i:02d}0000.wav")
    return folder


def inbox(folder, *paths) -> dict:
    """A watched folder holding `paths`: unlike a replay, the daemon runs on until told to stop, so that a test
    can wait for what the uplink did before it stops, however long connecting takes."""
    folder.mkdir()
    for path in paths:
        shutil.copy(path, folder / path.name)
    return {"type": "folder", "path": str(folder), "settle_seconds": 0.2}


def until_logged(config, outcome: str, station=None, records_dir=None) -> DaemonProcess:
    """The daemon on its watched folder until it has logged `outcome` (how its uplink fared) and analysed its
    recording, and, given a station, until the station holds every record of it; then a clean stop."""
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log(outcome)
        daemon.wait_log("recording_done")
        if station is not None:
            station.wait_for(expected_keys(records_dir))
        assert daemon.terminate(timeout=60)[0] == 0
    finally:
        daemon.close()
    return daemon


def mqtt_table(broker, **options):
    return {
        "host": "127.0.0.1",
        "port": broker.port,
        "reconnect_min_seconds": 0.2,
        "reconnect_max_seconds": 1.0,
        **options,
    }


def key(record):
    return record["id"], record["kind"], record["end_s"]


class Station:
    """`edge station` as a ranger runs it, and what its database holds."""

    def __init__(self, broker, folder, *args: str):
        self.db = folder / "station.sqlite"
        self.process = StationProcess(broker, self.db, *args)
        self.process.wait_log("station_subscribed")

    def records(self, kind: str) -> list[dict]:
        """Every record of `kind` the station kept, in the box's order."""
        return [
            json.loads(row[0])
            for row in query(self.db, "SELECT payload FROM records WHERE kind = ? ORDER BY box, seq", kind)
        ]

    def count(self, kind: str) -> int:
        rows = query(self.db, "SELECT count(*) FROM records WHERE kind = ?", kind)
        return rows[0][0] if rows else 0

    def keys(self) -> set:
        return {(kind, *key(r)) for kind in ("events", "alerts") for r in self.records(kind)}

    def status(self) -> str | None:
        rows = query(self.db, "SELECT status FROM boxes")
        return rows[0][0] if rows else None

    def wait_for(self, wanted: set, status: str | None = None, timeout: float = 60) -> None:
        """Until every record in `wanted` is in the database, and the box's status is `status`."""
        try:
            wait_for(lambda: wanted <= self.keys() and (status is None or self.status() == status), timeout)
        except AssertionError:
            missing = wanted - self.keys()
            raise AssertionError(
                f"{len(missing)} records never arrived, e.g. {sorted(missing)[:3]}; status {self.status()}"
            ) from None

    def seqs(self) -> list[int]:
        return sorted(row[0] for row in query(self.db, "SELECT seq FROM seqs"))

    def close(self) -> None:
        assert self.process.terminate() == 0
        assert query(self.db, "SELECT reason FROM rejected") == [], "the station rejected what the box published"


def expected_keys(records_dir, kind="events"):
    return {(kind, *key(r)) for r in read_records(records_dir, kind)}


def test_broker_down_for_30_s_in_the_middle_of_a_replay(data, tmp_path):
    broker = Mosquitto(tmp_path / "broker").start()
    station = Station(broker, tmp_path)
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "replay", "paths": [str(recordings(data, tmp_path / "in"))], "speed": 2},
        mqtt=mqtt_table(broker),
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("mqtt_connected")
        daemon.wait_log("detection_event")
        broker.stop()
        down = time.monotonic()
        daemon.wait_log("mqtt_connection_lost", timeout=60)
        during = len(daemon.logged("detection_event"))
        while time.monotonic() - down < 30:
            assert daemon.process.poll() is None, "the replay outlasts the outage"
            time.sleep(0.5)
        assert len(daemon.logged("detection_event")) > during, "events were found while the broker was down"
        broker.start()
        assert daemon.wait_exit(timeout=600) == 0
    finally:
        daemon.close()

    records = read_records(tmp_path / "data" / "records")
    station.wait_for(expected_keys(tmp_path / "data" / "records"), status="stopped")
    station.close()
    broker.stop()
    events = station.records("events")
    assert [key(r) for r in events] == [key(r) for r in records], "every event once, in the box's order"
    assert [r["seq"] for r in events] == [r["seq"] for r in records]
    seqs = station.seqs()
    assert seqs == list(range(1, seqs[-1] + 1)), "no record of any kind is missing"
    assert len(daemon.logged("mqtt_connected")) >= 2


def test_kill_9_with_the_broker_up_and_down_loses_nothing(data, tmp_path):
    folder = recordings(data, tmp_path / "in")
    reference = DaemonProcess(
        write_config(tmp_path / "reference.toml", tmp_path / "reference", {"type": "replay", "paths": [str(folder)]})
    )
    assert reference.wait_exit() == 0
    reference.close()
    wanted = expected_keys(tmp_path / "reference" / "records")
    events = len(read_records(tmp_path / "reference" / "records"))

    broker = Mosquitto(tmp_path / "broker").start()
    station = Station(broker, tmp_path)
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "replay", "paths": [str(folder)], "speed": 6},
        mqtt=mqtt_table(broker),
    )
    rng = random.Random(11)
    broker_up = [True, False, True, False]
    for up in broker_up:
        if up and broker.process is None:
            broker.start()
        if not up:
            broker.stop()
        daemon = DaemonProcess(config)
        try:
            daemon.wait_notification("READY=1")
            # Killed after it committed a seeded number of records (at least one, within the first half of the
            # replay's), wherever that falls in time on this machine.
            committed = rng.randint(1, max(1, events // 2))
            wait_for(
                lambda: len(daemon.logged("detection_event")) >= committed or daemon.process.poll() is not None,  # noqa: B023 - called within this iteration
                120,
                f"{committed} records committed",
            )
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(timeout=60)
        finally:
            daemon.close()
    if broker.process is None:
        broker.start()
    final = DaemonProcess(config)
    assert final.wait_exit(timeout=600) == 0
    final.close()
    assert final.logged("record_already_published"), "the killed runs' records were not published twice"

    station.wait_for(wanted)
    station.close()
    broker.stop()
    assert {k for k in station.keys() if k[0] == "events"} == wanted
    seqs = station.seqs()
    assert seqs == list(range(1, seqs[-1] + 1)), "no record of any kind is missing"
    with sqlite3.connect(tmp_path / "data" / "outbox.sqlite") as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0, "all acknowledged"


def test_tls_and_a_wrong_password_keep_records_until_fixed(data, tmp_path):
    certificates = make_certificates(tmp_path / "tls")
    broker = Mosquitto(
        tmp_path / "broker",
        users={"box": "right-secret-42", "station": "s"},
        tls={k: certificates[k] for k in ("ca", "cert", "key")},
    ).start()
    (tmp_path / "station-password").write_text("s")
    station = Station(broker, tmp_path, "--username", "station", "--password-file", str(tmp_path / "station-password"))
    secret = tmp_path / "password"
    secret.write_text("wrong-secret-41\n")
    tls = {
        "port": broker.tls_port,
        "ca_file": str(certificates["ca"]),
        "cert_file": str(certificates["client_cert"]),
        "key_file": str(certificates["client_key"]),
        "username": "box",
        "password_file": str(secret),
    }
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        inbox(tmp_path / "inbox-refused", data / "maad_spinetail.wav"),
        mqtt=mqtt_table(broker, **tls),
    )
    refused = until_logged(config, "mqtt_refused")
    errors = {entry["error"] for entry in refused.logged("mqtt_refused")}
    assert len(errors) == 1 and "wrong user name or password" in errors.pop()
    assert "secret-4" not in json.dumps(refused.lines), "a password is never logged"
    with sqlite3.connect(tmp_path / "data" / "outbox.sqlite") as db:
        kept = db.execute("SELECT count(*) FROM outbox WHERE kind = 'events'").fetchone()[0]
    records = read_records(tmp_path / "data" / "records")
    assert kept == len(records) > 0

    wrong_ca = write_config(
        tmp_path / "wrong-ca.toml",
        tmp_path / "data",
        inbox(tmp_path / "inbox-wrong-ca", data / "opso_birds_10s.wav"),
        mqtt=mqtt_table(broker, **{**tls, "ca_file": str(certificates["other_ca"])}),
    )
    untrusted = until_logged(wrong_ca, "mqtt_connect_failed")
    assert any("certificate verify failed" in e["error"] for e in untrusted.logged("mqtt_connect_failed"))

    secret.write_text("right-secret-42\n")
    until_logged(
        write_config(
            tmp_path / "fixed.toml",
            tmp_path / "data",
            inbox(tmp_path / "inbox-fixed", data / "opso_birds_10s.wav"),
            mqtt=mqtt_table(broker, **tls),
        ),
        "mqtt_connected",
        station,
        tmp_path / "data" / "records",
    )
    station.close()
    broker.stop()
    assert len(station.records("events")) == len(read_records(tmp_path / "data" / "records"))


def test_status_tells_a_crash_from_a_stop(data, tmp_path):
    """Online, offline (the last will) and stopped, each with the position the configuration gives."""
    broker = Mosquitto(tmp_path / "broker").start()
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": str(tmp_path / "inbox")},
        mqtt=mqtt_table(broker),
        species={"latitude": -3.4653, "longitude": -62.2159},
    )
    (tmp_path / "inbox").mkdir()

    def retained_status() -> dict:
        """What a subscriber arriving now learns first (the retained message, or a newer one racing it)."""
        late = Subscriber(broker, "edge/test-box/status")
        message = late.expect(1, timeout=30)[0]
        late.close()
        return {**json.loads(message.payload), "retained": message.retain}

    daemon = DaemonProcess(config)
    daemon.wait_log("mqtt_connected")
    status = retained_status()
    assert (status["state"], status["latitude"], status["longitude"]) == ("online", -3.4653, -62.2159)
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait(timeout=60)
    daemon.close()
    deadline = time.monotonic() + 30  # the broker sends the will as soon as it sees the socket closed
    while (status := retained_status())["state"] != "offline":
        assert time.monotonic() < deadline, status
    assert status["retained"] and (status["latitude"], status["longitude"]) == (-3.4653, -62.2159)
    daemon = DaemonProcess(config)
    daemon.wait_log("mqtt_connected")
    code, _ = daemon.terminate(timeout=60)
    daemon.close()
    assert code == 0
    status = retained_status()
    broker.stop()
    assert status["state"] == "stopped" and status["retained"]
    assert status["schema"] == "edge.status/1" and status["box"] == "test-box"
    assert status["time_utc"].endswith("+00:00") and (status["latitude"], status["longitude"]) == (-3.4653, -62.2159)


def test_a_box_moved_by_a_reload_says_so_at_its_next_connection(tmp_path):
    """A new position given by SIGHUP goes out in the next connection's status and last will."""
    broker = Mosquitto(tmp_path / "broker").start()
    (tmp_path / "inbox").mkdir()

    def configure(latitude: float) -> Path:
        return write_config(
            tmp_path / "edge.toml",
            tmp_path / "data",
            {"type": "folder", "path": str(tmp_path / "inbox")},
            mqtt=mqtt_table(broker),
            species={"latitude": latitude, "longitude": -62.2159},
        )

    def status_at(state: str, latitude: float) -> bool:
        late = Subscriber(broker, "edge/test-box/status")
        status = json.loads(late.expect(1, timeout=30)[0].payload)
        late.close()
        return (status["state"], status["latitude"]) == (state, latitude)

    daemon = DaemonProcess(configure(-3.4653))
    try:
        daemon.wait_log("mqtt_connected")
        configure(-3.5)
        daemon.process.send_signal(signal.SIGHUP)
        assert daemon.wait_log("config_reloaded")["applied"] == ["species"]
        broker.stop()
        broker.start()
        wait_for(lambda: status_at("online", -3.5), 60, "the new position in the status of the next connection")
        daemon.kill()
        wait_for(lambda: status_at("offline", -3.5), 60, "the new position in the last will")
    finally:
        daemon.close()
        broker.stop()


def test_falls_back_to_mqtt_3_1_1_for_an_older_broker(data, tmp_path):
    broker = Mosquitto(tmp_path / "broker").start()
    old = OldBroker(broker)
    station = Station(broker, tmp_path)
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        inbox(tmp_path / "inbox", data / "maad_spinetail.wav"),
        mqtt={**mqtt_table(broker), "port": old.port},
    )
    daemon = until_logged(config, "mqtt_connected", station, tmp_path / "data" / "records")
    station.wait_for(expected_keys(tmp_path / "data" / "records"), status="stopped")
    station.close()
    old.close()
    broker.stop()
    assert old.levels[:2] == [5, 4], "MQTT 5 first, then 3.1.1 at once"
    assert daemon.wait_log("mqtt_connected")["version"] == "3.1.1"
    assert [e["error"] for e in daemon.logged("mqtt_refused")] == ["MQTT version not supported by the broker"]


def backlog(path, count: int) -> None:
    """`count` health records left in the outbox by a long outage, written in one transaction."""
    Outbox(path).close()
    began = datetime(2026, 11, 1, tzinfo=UTC)
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO outbox VALUES (?, 'health', ?, 0)",
            (
                (
                    seq,
                    json.dumps(
                        {
                            "schema": "edge.health/1",
                            "box": "test-box",
                            "seq": seq,
                            "backlog": True,
                            "time_utc": (began + timedelta(seconds=seq)).isoformat(timespec="milliseconds"),
                        }
                    ),
                )
                for seq in range(1, count + 1)
            ),
        )
        db.execute("INSERT INTO counters VALUES ('seq', ?)", (count,))


class HeldAcknowledgements(Relay):
    """A TCP relay to the broker that passes its CONNACK, then holds everything else it sends (its PUBACKs)
    until `release()`: a link on which acknowledgements are slow to come back, so that what the uplink sent
    first stays in flight whatever the speed of the machine."""

    def __init__(self, broker: Mosquitto):
        self.released = threading.Event()
        super().__init__(broker)

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        self._hold(upstream, client)

    def _hold(self, upstream: socket.socket, client: socket.socket) -> None:
        held = b""
        try:
            while (end := first_packet_end(held)) is None:
                chunk = upstream.recv(65536)
                if not chunk:
                    raise OSError("the broker closed the connection")
                held += chunk
            client.sendall(held[:end])  # the CONNACK
            self.released.wait()
            client.sendall(held[end:])
        except OSError:
            for s in (upstream, client):
                s.close()
            return
        self._pipe(upstream, client)

    def release(self) -> None:
        self.released.set()


def first_packet_end(data: bytes) -> int | None:
    """Where the first MQTT packet in `data` ends (its fixed header: a type byte, then the remaining length as
    a varint), or None while it is incomplete."""
    length = 0
    for i in range(1, min(len(data), 5)):
        length |= (data[i] & 0x7F) << (7 * (i - 1))
        if data[i] < 0x80:
            end = i + 1 + length
            return end if len(data) >= end else None
    return None


def test_live_events_do_not_wait_behind_a_long_backlog(data, tmp_path):
    """A backlog left by a long outage, and a link whose acknowledgements are slow: the uplink fills its
    in-flight slots with backlog, yet an event found meanwhile goes out at once, ahead of the rest of it."""
    count, max_inflight = 10_000, 20
    backlog(tmp_path / "data" / "outbox.sqlite", count)
    broker = Mosquitto(tmp_path / "broker").start()
    station = Station(broker, tmp_path)
    link = HeldAcknowledgements(broker)
    (tmp_path / "inbox").mkdir()
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": str(tmp_path / "inbox"), "settle_seconds": 0.2},
        health={"interval_seconds": 3600},
        mqtt=mqtt_table(broker, port=link.port, max_inflight=max_inflight, keepalive=600, drain_seconds=60),
    )
    daemon = DaemonProcess(config)
    try:
        assert daemon.wait_log("mqtt_connected")["backlog"] == count
        # Only now is there anything to analyse: the event is live, found after the uplink connected.
        shutil.copy(data / "maad_spinetail.wav", tmp_path / "inbox")
        daemon.wait_log("detection_event")
        link.release()
        released = time.monotonic()
        daemon.wait_log("recording_done")
        # Slow is fine (the station stores a few hundred records a second), stuck is not.
        wait_for_progress(lambda: station.count("health"), count, what="backlog records stored by the station")
        stored = time.monotonic() - released
        code, _ = daemon.terminate(timeout=120)
    finally:
        daemon.close()
        link.close()
    assert code == 0
    assert daemon.wait_log("mqtt_stopped")["pending"] == 0
    station.wait_for(expected_keys(tmp_path / "data" / "records"), status="stopped", timeout=120)
    station.close()
    broker.stop()
    first_event_after = query(
        station.db,
        "SELECT count(*) FROM records WHERE kind = 'health' AND rowid < "
        "(SELECT min(rowid) FROM records WHERE kind = 'events')",
    )[0][0]
    print(
        f"the first live event arrived after {first_event_after} of {count} backlog records; the station "
        f"stored the backlog {stored:.1f} s after the acknowledgements were let through"
    )
    assert first_event_after < max_inflight, "the first event overtook all of the backlog but what was in flight"
    assert sum(1 for h in station.records("health") if h.get("backlog")) == count
    seqs = station.seqs()
    assert seqs == list(range(1, seqs[-1] + 1))
    assert seqs[-1] >= count + len(read_records(tmp_path / "data" / "records"))


def edge_replay_scores(path, class_name) -> list[tuple[float, float]]:
    """(window start, score) of one class in each window of a recording, as `edge replay` reports them."""
    from edge.audio.windower import Windower, WindowSpec
    from edge.inference.ensemble import MemberSpec, load_ensemble
    from edge.inference.manifest import default_models_dir
    from edge.inference.member import MemberOptions
    from edge.types import AudioChunk, Stream

    ensemble = load_ensemble(default_models_dir(), [MemberSpec("birdnet-v2.4")], WindowSpec(), MemberOptions())
    column = [label.scientific_name for label in ensemble.taxonomy.labels].index(class_name)
    samples, rate = soundfile.read(path, dtype="float32")
    windows = Windower(WindowSpec(), ensemble.sample_rates).push(AudioChunk(Stream("x", rate), 0, samples, True))
    return [(s.window.start_seconds, float(s.probabilities[column])) for s in ensemble.score(windows)]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [line.split("  #")[0].strip() for line in text.splitlines() if line.startswith("mosquitto_sub ")]


def test_alerts_reach_their_topic_and_the_readme_commands_show_them(data, tmp_path):
    """A threat class heard in a real recording (hand claps, which BirdNET scores as "Power tools" and
    "Fireworks") goes to the alerts topic from the window that heard it, once per class and interval, with its
    confidence and time; the health record sums the alerts up. The README's commands, typed as shown (with the
    test broker's address), print a box's status, its records and its alerts."""
    broker = Mosquitto(tmp_path / "broker").start()
    station = Station(broker, tmp_path)
    classes = [{"name": "Power tools", "threshold": 0.3}, {"name": "Fireworks", "threshold": 0.15}, "Gun"]
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        inbox(tmp_path / "inbox", data / "perch_clap.wav"),
        mqtt=mqtt_table(broker),
        alerts={"classes": classes, "min_interval": 60},
        box_id="wetland-03",
    )
    records = tmp_path / "data" / "records"
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("mqtt_connected")
        daemon.wait_log("recording_done")
        sent = read_records(records, "alerts")
        assert sorted(a["alert_class"] for a in sent) == ["Fireworks", "Power tools"]
        station.wait_for({("alerts", *key(a)) for a in sent} | expected_keys(records))
        assert daemon.terminate(timeout=60)[0] == 0
    finally:
        daemon.close()
    station.close()
    alerts = station.records("alerts")
    assert {a["schema"] for a in alerts} == {"edge.alert/2"} and {a["kind"] for a in alerts} == {"alert"}
    for alert in alerts:
        assert alert["confidence"] >= alert["threshold"] and 0 < alert["end_s"] - alert["start_s"] <= 5.0
        assert alert["box"] == "wetland-03" and alert["detected_utc"]
    assert {a["seq"] for a in alerts}.isdisjoint(e["seq"] for e in read_records(records)), (
        "an alert has a seq of its own"
    )
    # The first window over the threshold alerts: no smoothing delay, no waiting for a second window.
    power = next(a for a in alerts if a["alert_class"] == "Power tools")
    window_scores = edge_replay_scores(data / "perch_clap.wav", "Power tools")
    assert power["start_s"] == min(start for start, score in window_scores if score >= 0.3)
    summary = read_records(records, "health")[-1]["alerts"]
    assert summary["Power tools"]["sent"] == 1 and summary["Gun"]["sent"] == 0
    assert summary["Power tools"]["held_back"] == sum(score >= 0.3 for _, score in window_scores) - 1

    commands = readme_commands()
    assert len(commands) == 3
    box = paho.Client(paho.CallbackAPIVersion.VERSION2)
    box.connect("127.0.0.1", broker.port)
    box.loop_start()
    for command in commands:
        argv = shlex.split(command.replace("-h station.example.org", f"-h 127.0.0.1 -p {broker.port}"))
        watcher = subprocess.Popen([*argv, "-C", "1", "-W", "20"], stdout=subprocess.PIPE, text=True)
        while watcher.poll() is None:  # the status is retained; an alert must come after the subscription
            box.publish("edge/wetland-03/alerts", json.dumps(alerts[0]), qos=1)
            time.sleep(0.2)
        output = watcher.stdout.read()
        assert watcher.returncode == 0, command
        assert "wetland-03" in output, (command, output)
    box.loop_stop()
    broker.stop()
