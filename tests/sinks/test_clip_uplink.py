"""Clips to the station through a real mosquitto: each event's clip arrives once, whole, on <prefix>/<box>/clips,
after the records; the hourly byte budget holds."""

from __future__ import annotations

import hashlib

import pytest

from edge.wire.clips import CLIP_SCHEMA, unframe
from support.broker import Mosquitto, Subscriber
from support.config import write_config
from support.processes import DaemonProcess, StationProcess
from support.records import query, read_records
from support.waiting import wait_for


def clip_config(tmp_path, source, broker, name=None, clips=None, kinds=("alerts", "events"), **sections):
    """A box watching a folder that holds `source` (as `name`), sending clips of `kinds` to `broker`."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / (name or source.name)).write_bytes(source.read_bytes())
    uplink = {"kinds": list(kinds), **sections.pop("uplink", {})}
    return write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": str(inbox), "settle_seconds": 0.2},
        mqtt={"host": "127.0.0.1", "port": broker.port},
        clips={"enabled": True, **(clips or {})},
        uplink={"clips": uplink},
        **sections,
    )


def event_clips(data_dir) -> dict[str, str]:
    """Each event's id and its clip's path, from the records the box wrote."""
    return {r["id"]: r["clip"] for r in read_records(data_dir / "records") if r.get("clip")}


def test_each_event_clip_arrives_once_and_whole(tmp_path, data):
    broker = Mosquitto(tmp_path / "broker").start()
    subscriber = Subscriber(broker, "edge/test-box/clips")
    daemon = DaemonProcess(clip_config(tmp_path, data / "maad_spinetail.wav", broker))
    try:
        daemon.wait_log("recording_done", file="maad_spinetail.wav")
        wait_for(lambda: event_clips(tmp_path / "data"), 60, "an event with its clip")
        expected = event_clips(tmp_path / "data")
        messages = subscriber.expect(len(expected), timeout=120)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
        subscriber.close()
        broker.stop()
    assert code == 0
    got = {}
    for message in messages:
        metadata, audio = unframe(message.payload)
        assert metadata["schema"] == CLIP_SCHEMA and metadata["box"] == "test-box" and audio.startswith(b"fLaC")
        assert metadata["sha256"] == hashlib.sha256(audio).hexdigest()
        got[metadata["id"]] = audio
    assert set(got) == set(expected), "each event's clip, once"
    for id, path in expected.items():
        assert got[id] == (tmp_path / "data" / "clips" / path).read_bytes()
    print(f"{len(got)} clips, {sum(map(len, got.values()))} bytes")


def test_the_byte_budget_holds_clips_back(tmp_path, data):
    """Two clips of 0.5 and 0.7 MB against 1 MB an hour: one goes, the other waits for the hour to pass."""
    broker = Mosquitto(tmp_path / "broker").start()
    subscriber = Subscriber(broker, "edge/test-box/clips")
    daemon = DaemonProcess(
        clip_config(tmp_path, data / "maad_spinetail.wav", broker, uplink={"bytes_per_hour": 1_000_000})
    )
    try:
        daemon.wait_log("recording_done", file="maad_spinetail.wav")
        wait_for(lambda: len(event_clips(tmp_path / "data")) == 2, 60, "both events with their clips")
        [sent] = subscriber.expect(1, timeout=120)
        health = daemon.wait_log("health", clips_sent=1, clips_waiting=1)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
        subscriber.close()
        broker.stop()
    assert code == 0
    sizes = sorted((tmp_path / "data" / "clips" / p).stat().st_size for p in event_clips(tmp_path / "data").values())
    assert sum(sizes) > 1_000_000 > max(sizes), "the two clips do not fit in the hour, each one does"
    assert subscriber.messages.empty() and len(sent.payload) > min(sizes)
    assert health["clip_bytes_last_hour"] <= 1_000_000 and health["clips_dropped"] == 0


def test_clips_queued_while_the_broker_is_down_survive_a_kill_9(tmp_path, data):
    """The broker is down while the clips are written; the box is killed; restarted with the broker up, it sends
    each clip once (a persistent subscriber collects them across the outage)."""
    broker = Mosquitto(tmp_path / "broker").start()
    Subscriber(broker, "edge/test-box/clips", session="station").close()  # the broker keeps its session
    broker.stop()
    config = clip_config(tmp_path, data / "maad_spinetail.wav", broker)
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("recording_done", file="maad_spinetail.wav")
        wait_for(lambda: len(event_clips(tmp_path / "data")) == 2, 60, "both events with their clips")
        daemon.wait_log("health", clips_waiting=2)  # queued, committed
        daemon.kill()
    finally:
        daemon.close()
    broker.start()
    subscriber = Subscriber(broker, "edge/test-box/clips", session="station")
    daemon = DaemonProcess(config)
    try:
        messages = subscriber.expect(2, timeout=120)
        daemon.wait_log("health", clips_sent=2, clips_waiting=0)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
        subscriber.close()
        broker.stop()
    assert code == 0 and subscriber.messages.empty(), "each clip once"
    ids = {unframe(m.payload)[0]["id"] for m in messages}
    assert ids == set(event_clips(tmp_path / "data"))


def test_an_alert_clip_is_its_window_and_pre_roll(tmp_path, data):
    """Hand claps, which BirdNET scores as "Power tools" and "Fireworks": each alert's clip arrives with its
    alert class and id, its window and one second before it, while no event clip is sent (alerts only)."""
    broker = Mosquitto(tmp_path / "broker").start()
    subscriber = Subscriber(broker, "edge/test-box/clips")
    config = clip_config(
        tmp_path,
        data / "perch_clap.wav",
        broker,
        clips={"pre_roll": 1.0},
        kinds=["alerts"],
        alerts={"classes": [{"name": "Power tools", "threshold": 0.3}, {"name": "Fireworks", "threshold": 0.15}]},
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("recording_done", file="perch_clap.wav")
        alerts = {a["id"]: a for a in daemon.logged("alert")}
        messages = subscriber.expect(len(alerts), timeout=120)
        daemon.wait_log("health", clips_waiting=0, clips_sent=len(alerts))
        code, _ = daemon.terminate()
    finally:
        daemon.close()
        subscriber.close()
        broker.stop()
    assert code == 0 and len(alerts) == 2 and subscriber.messages.empty()
    for message in messages:
        metadata, audio = unframe(message.payload)
        alert = alerts[metadata["id"]]
        assert (metadata["kind"], metadata["alert_class"]) == ("alert", alert["alert_class"])
        window = metadata["end_s"] - metadata["start_s"]
        assert metadata["duration_s"] == pytest.approx(window + min(1.0, metadata["start_s"]), abs=0.01)
        assert audio.startswith(b"fLaC") and metadata["refused"] is None


def test_a_clip_refused_for_speech_is_reported_without_audio(tmp_path, data):
    """Read speech raises a "Human vocal" alert; the privacy gate refuses its clip: the station learns there
    was an alert with audio that was not kept."""
    broker = Mosquitto(tmp_path / "broker").start()
    subscriber = Subscriber(broker, "edge/test-box/clips")
    config = clip_config(
        tmp_path,
        data / "3436-172162-0000.hq.ogg",
        broker,
        name="speech.ogg",
        kinds=["alerts"],
        alerts={"classes": [{"name": "Human vocal", "threshold": 0.05}]},
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("recording_done", file="speech.ogg")
        alerts = {a["id"] for a in daemon.logged("alert")}
        messages = subscriber.expect(len(alerts), timeout=120)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
        subscriber.close()
        broker.stop()
    assert code == 0 and alerts
    for message in messages:
        metadata, audio = unframe(message.payload)
        assert metadata["id"] in alerts and metadata["refused"] == "speech"
        assert audio == b"" and metadata["bytes"] == 0 and metadata["sha256"] is None
    assert not list((tmp_path / "data" / "clips").rglob("*.flac")), "no audio of speech on the card"


def test_box_to_station_through_an_outage_and_a_kill_9_every_clip_stored_once(tmp_path, data):
    """The whole chain: the broker is down while the box writes its clips, the box is killed, the broker and the
    box come back; the station stores each clip once, byte for byte as the box wrote it."""
    broker = Mosquitto(tmp_path / "broker").start()
    station = StationProcess(broker, tmp_path / "station.sqlite", "--clips-dir", str(tmp_path / "station-clips"))
    station.wait_log("station_subscribed")
    broker.stop()
    config = clip_config(tmp_path, data / "maad_spinetail.wav", broker)
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("recording_done", file="maad_spinetail.wav")
        wait_for(lambda: len(event_clips(tmp_path / "data")) == 2, 60, "both events with their clips")
        daemon.wait_log("health", clips_waiting=2)
        daemon.kill()
    finally:
        daemon.close()
    broker.start()
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("health", clips_sent=2, clips_waiting=0)
        wait_for(lambda: len(stored(tmp_path / "station.sqlite")) == 2, 120, "both clips at the station")
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert station.terminate() == 0
    broker.stop()
    assert code == 0
    rows = stored(tmp_path / "station.sqlite")
    box_clips = event_clips(tmp_path / "data")
    assert sorted(r["id"] for r in rows) == sorted(box_clips), "each clip once"
    for row in rows:
        sent = (tmp_path / "data" / "clips" / box_clips[row["id"]]).read_bytes()
        assert (tmp_path / "station-clips" / row["path"]).read_bytes() == sent
        assert row["sha256"] == hashlib.sha256(sent).hexdigest()


def stored(db) -> list:
    return query(db, "SELECT id, path, sha256 FROM clips")
