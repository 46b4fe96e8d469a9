"""Clips (`edge.clip/1` on `edge/<box>/clips`) at `edge station` against a real mosquitto: each stored once as a
FLAC file with the sha256 the box sent, a damaged one rejected with its reason while the station goes on, a
refused one kept as a row without audio; retention by size; export into a folder."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import soundfile as sf
from click.testing import CliRunner

from edge.cli.main import main
from edge.station.clips import MAX_MESSAGE_BYTES, ClipArchive, ClipError, file_stem, head, parse_clip
from edge.station.schemas import MAX_CLIP_BYTES
from edge.station.store import Store
from edge.wire.clips import CLIP_SCHEMA, audio_fields, frame
from edge.wire.records import iso
from support import paths
from support.audio import silence, unknown_length
from support.broker import Mosquitto
from support.processes import StationProcess
from support.records import query

GOLDEN = json.loads((paths.GOLDEN / "event_v1.json").read_text())
RECEIVED = "2026-11-23T09:00:30.000+00:00"


def flac(seconds: float, rate: int = 48000, seed: int = 1) -> bytes:
    """Noise as FLAC: it hardly compresses, so that its size is about 2 bytes a sample."""
    samples = np.random.default_rng(seed).uniform(-0.9, 0.9, int(seconds * rate))
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, subtype="PCM_16", format="FLAC")
    return buffer.getvalue()


def metadata(clip_id: str, audio: bytes, box: str = "box-a", **fields) -> dict:
    """What a box says of a clip of its event (kind alert: of its alert), its sample rate and duration those of
    the FLAC."""
    return {
        "schema": CLIP_SCHEMA,
        "id": clip_id,
        "kind": "event",
        "box": box,
        "source": "rec/20261123_090000.wav",
        "scientific_name": "Troglodytes troglodytes",
        "common_name": "Eurasian Wren",
        "label": "Troglodytes troglodytes_Eurasian Wren",
        "alert_class": None,
        "start_utc": "2026-11-23T09:00:07.500+00:00",
        "end_utc": "2026-11-23T09:00:12.500+00:00",
        "start_s": 7.5,
        "end_s": 12.5,
        **audio_fields(audio),
        "refused": None,
        **fields,
    }


def clip_message(clip_id: str, audio: bytes, **fields) -> bytes:
    return frame(metadata(clip_id, audio, **fields), audio)


def publish(broker: Mosquitto, topic: str, *payloads: bytes) -> None:
    """QoS 1, as a box's uplink sends, each acknowledged by the broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


def event_record(box: str = "box-ok") -> bytes:
    return json.dumps({**GOLDEN, "box": box, "seq": 1}).encode()


def clip_rows(db):
    return query(db, "SELECT * FROM clips ORDER BY received_utc, rowid")


def test_a_2_mb_clip_sent_twice_is_stored_once(broker, tmp_path):
    """Through mosquitto's default limits; the second delivery (as after a reconnection) writes nothing."""
    db = tmp_path / "station.sqlite"
    audio = flac(24)
    assert len(audio) > 2_000_000
    message = clip_message(GOLDEN["id"], audio)
    station = StationProcess(broker, db)
    try:
        station.wait_log("station_subscribed")
        publish(broker, "edge/box-a/clips", message, message)
        assert station.wait_log("clip_duplicate")["id"] == GOLDEN["id"]
        (row,) = clip_rows(db)
        assert (row["box"], row["id"], row["kind"], row["bytes"], row["refused"]) == (
            "box-a",
            GOLDEN["id"],
            "event",
            len(audio),
            None,
        )
        assert row["path"] == f"box-a/2026-11-23/{GOLDEN['id']}.flac"
        stored = (tmp_path / "clips" / row["path"]).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == row["sha256"] == hashlib.sha256(audio).hexdigest()
        assert [p.name for p in (tmp_path / "clips").rglob("*") if p.is_file()] == [f"{GOLDEN['id']}.flac"]
        assert len(station.logged("clip_stored")) == 1
    finally:
        assert station.terminate() == 0


def test_a_clip_sent_while_the_station_is_off_arrives_when_it_is_back(broker, tmp_path):
    """The broker queues clips in the station's session as it does records."""
    db = tmp_path / "station.sqlite"
    station = StationProcess(broker, db)
    station.wait_log("station_subscribed")
    assert station.terminate() == 0
    audio = flac(1)
    publish(broker, "edge/box-a/clips", clip_message("c-1", audio))
    station = StationProcess(broker, db)
    try:
        (row,) = station.wait_for(lambda: clip_rows(db), what="the clip queued while the station was off")
        assert (tmp_path / "clips" / row["path"]).read_bytes() == audio
    finally:
        assert station.terminate() == 0


def test_a_clip_with_a_flipped_byte_is_rejected_and_the_station_goes_on(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    message = bytearray(clip_message("c-1", flac(1)))
    message[-100] ^= 0x01
    station = StationProcess(broker, db)
    try:
        station.wait_log("station_subscribed")
        publish(broker, "edge/box-a/clips", bytes(message))
        publish(broker, "edge/box-ok/events", event_record())
        station.wait_for(lambda: query(db, "SELECT 1 FROM records WHERE box = 'box-ok'"), what="the valid record")
        (rejected,) = station.wait_for(lambda: query(db, "SELECT * FROM rejected"), what="the clip set aside")
        assert "sha256" in rejected["reason"] and rejected["size"] == len(message)
        assert rejected["payload"] == message[: message.index(b"\n")].decode()  # the metadata, not the audio
        assert station.wait_log("clip_rejected")["reason"] == rejected["reason"]
        assert query(db, "SELECT rejected FROM boxes WHERE box = 'box-a'")[0][0] == 1
        assert clip_rows(db) == [] and not list(tmp_path.glob("clips/*/*/*"))
    finally:
        assert station.terminate() == 0


def test_a_clip_holding_more_audio_than_its_metadata_says_is_rejected_and_the_station_goes_on(broker, tmp_path):
    """Silence compresses to almost nothing: a few kilobytes of FLAC can decode to gigabytes. The FLAC's header
    is held to the metadata on arrival (nothing decoded), and a clip that is not what it says is set aside."""
    db = tmp_path / "station.sqlite"
    eight = silence(5.0, channels=8)  # the metadata says 5 s at 48 kHz: true, on eight channels
    long = silence(600.0)  # ten minutes said to be five seconds
    unknown = unknown_length(silence(5.0))
    assert len(eight) + len(long) < 100_000
    messages = (
        clip_message("c-8", eight),
        frame(metadata("c-long", long) | {"duration_s": 5.0}, long),
        frame(metadata("c-length", unknown) | {"duration_s": 5.0}, unknown),
    )
    station = StationProcess(broker, db)
    try:
        station.wait_log("station_subscribed")
        publish(broker, "edge/box-a/clips", *messages)
        publish(broker, "edge/box-ok/events", event_record())
        station.wait_for(lambda: query(db, "SELECT 1 FROM records WHERE box = 'box-ok'"), what="the valid record")
        rejected = station.wait_for(
            lambda: len(rows := query(db, "SELECT * FROM rejected ORDER BY rowid")) == 3 and rows,
            what="the three clips set aside",
        )
        assert [r["reason"] for r in rejected] == [
            "the FLAC has 8 channels; a clip has at most 2",
            "the FLAC holds 600.000 s of audio, the metadata says 5.0 s",
            "the FLAC does not declare its length (total samples unknown)",
        ]
        assert [r["size"] for r in rejected] == [len(m) for m in messages]
        assert query(db, "SELECT rejected FROM boxes WHERE box = 'box-a'")[0][0] == 3
        assert clip_rows(db) == [] and not list(tmp_path.glob("clips/*/*/*"))
    finally:
        assert station.terminate() == 0


def test_a_refused_clip_is_stored_as_refused(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    station = StationProcess(broker, db)
    try:
        station.wait_log("station_subscribed")
        alert = clip_message("a-1", b"", kind="alert", alert_class="Gun", refused="speech")
        publish(broker, "edge/box-a/clips", alert)
        (row,) = station.wait_for(lambda: clip_rows(db), what="the refused clip")
        assert (row["kind"], row["alert_class"], row["refused"], row["path"], row["bytes"], row["sha256"]) == (
            "alert",
            "Gun",
            "speech",
            None,
            0,
            None,
        )
        assert not list(tmp_path.glob("clips/*/*/*"))
    finally:
        assert station.terminate() == 0


def test_retention_prunes_the_oldest_clips_by_size(broker, tmp_path):
    db = tmp_path / "station.sqlite"
    audios = [flac(1, seed=n) for n in range(3)]  # about 96 kB each
    station = StationProcess(broker, db, "--clip-max-mb", str((len(audios[1]) + len(audios[2]) + 1000) / 1e6))
    try:
        station.wait_log("station_subscribed")
        publish(broker, "edge/box-a/clips", *(clip_message(f"c-{n}", a) for n, a in enumerate(audios)))
        station.wait_log("clips_pruned")
        rows = station.wait_for(lambda: len(clip_rows(db)) == 3 and clip_rows(db), what="three clips")
        assert [(r["id"], r["path"] is None, r["pruned_utc"] is not None) for r in rows] == [
            ("c-0", True, True),
            ("c-1", False, False),
            ("c-2", False, False),
        ]
        assert sorted(p.name for p in tmp_path.glob("clips/*/*/*")) == ["c-1.flac", "c-2.flac"]
    finally:
        assert station.terminate() == 0


def test_retention_by_age_keeps_the_rows(tmp_path):
    store = Store.open(tmp_path / "station.sqlite")
    archive = ClipArchive(store, tmp_path / "clips", max_age_days=90, max_megabytes=None)
    audio, now = flac(0.5), datetime.now(UTC)  # received now: adding prunes by the clock too
    assert archive.add(parse_clip("box-a", clip_message("c-0", audio), iso(now)))
    assert archive.prune(now + timedelta(days=89)) == 0
    assert archive.prune(now + timedelta(days=91)) == 1
    row = store.db.execute("SELECT path, pruned_utc FROM clips").fetchone()
    assert row["path"] is None and row["pruned_utc"] == iso(now + timedelta(days=91))
    assert not list((tmp_path / "clips").rglob("*.flac"))
    assert not archive.add(parse_clip("box-a", clip_message("c-0", audio), iso(now)))  # once, pruned or not
    store.close()


def test_export_writes_the_clips_of_a_box_and_day(tmp_path):
    db = tmp_path / "station.sqlite"
    store = Store.open(db)
    archive = ClipArchive(store, tmp_path / "clips")
    audios = {"c-1": flac(0.5, seed=1), "c-2": flac(0.5, seed=2)}
    for clip_id, audio in audios.items():
        archive.add(parse_clip("box-a", clip_message(clip_id, audio), RECEIVED))
    archive.add(
        parse_clip("box-a", clip_message("a/../x", b"", kind="alert", alert_class="Gun", refused="speech"), RECEIVED)
    )
    later = clip_message("c-3", flac(0.5), start_utc="2026-11-24T01:00:00.000+00:00")
    archive.add(parse_clip("box-a", later, RECEIVED))
    year_1 = clip_message("c-5", flac(0.5), start_utc="0001-01-01T00:00:00+05:00")  # beyond UTC: the day received
    archive.add(parse_clip("box-a", year_1, RECEIVED))
    assert store.db.execute("SELECT path FROM clips WHERE id = 'c-5'").fetchone()[0] == "box-a/2026-11-23/c-5.flac"
    archive.add(parse_clip("box-b", clip_message("c-4", flac(0.5), box="box-b"), RECEIVED))
    store.close()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["station", "export", "--db", str(db), "--clips", str(out), "--box", "box-a", "--day", "2026-11-23"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "index.csv").open(encoding="utf-8")))
    assert [(r["id"], r["refused"]) for r in rows] == [("a/../x", "speech"), ("c-1", ""), ("c-2", "")]
    assert rows[0]["file"] == ""
    for row in rows[1:]:
        assert row["file"] == f"box-a_2026-11-23_090007_Eurasian-Wren_event_{row['id']}.flac"
        assert (out / row["file"]).read_bytes() == audios[row["id"]]
    assert sorted(p.name for p in out.iterdir()) == sorted(["index.csv", rows[1]["file"], rows[2]["file"]])


def test_clip_ids_make_safe_file_names():
    assert file_stem("3f2a1b2c-aaaa-bbbb-cccc-0123456789ab") == "3f2a1b2c-aaaa-bbbb-cccc-0123456789ab"
    for unsafe in ("..", "a/../../etc", ".hidden", "a b", "é"):
        stem = file_stem(unsafe)
        assert stem.replace("-", "").replace("_", "").isalnum() and stem != file_stem(unsafe + "x")
    assert file_stem("a/b") != file_stem("a_b")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"kind": "alert"}, "alert_class None for a clip of kind alert"),
        ({"alert_class": "Gun"}, "alert_class 'Gun' for a clip of kind event"),
        ({"sample_rate": 1000}, "sample_rate 1000 is not within"),
        ({"id": "i" * 65}, "id is longer than 64"),
        ({"start_utc": "today"}, "start_utc is not an ISO 8601 time"),
        ({"box": "box-b"}, "box 'box-b' of the clip is not the topic's 'box-a'"),
        ({"seq": 1, "schema": "edge.clip/2"}, "not an edge.clip/1 object"),
        ({"bytes": 5}, "the metadata says 5"),
        ({"sample_rate": 16000}, "the FLAC is at 48000 Hz, the metadata says 16000"),
        ({"duration_s": 5.0}, "the FLAC holds 0.100 s of audio, the metadata says 5.0 s"),
        ({"duration_s": 601.0}, r"duration_s 601.0 is not within \[0, 600\]"),
        ({"sample_rate": None}, "not refused has no sample_rate or duration_s"),
    ],
)
def test_clip_metadata_is_checked(fields, reason):
    with pytest.raises(ClipError, match=reason):
        parse_clip("box-a", clip_message("c-1", flac(0.1), **fields), RECEIVED)


def test_what_is_no_clip_message_is_refused():
    audio = flac(0.1)
    for payload, reason in (
        (b"x" * 70_000, "no metadata line within the first 65536 bytes"),
        (clip_message("c", b"", refused="noise"), "refused 'noise' is none of speech"),
        (b"{}\n" + audio, "not an edge.clip/1 object"),
        (
            json.dumps({k: v for k, v in metadata("c", audio).items() if k != "label"}).encode() + b"\n" + audio,
            "without label",
        ),
        (clip_message("c", b""), "audio is not FLAC"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), f"clip message of {MAX_MESSAGE_BYTES + 1} bytes is larger than"),
    ):
        with pytest.raises(ClipError, match=reason):
            parse_clip("box-a", payload, RECEIVED)
    assert head(b"fLaC" + audio) == b"" and head(b'{"a": 1}fLaC\x00\n') == b'{"a": 1}'  # the audio is not kept
    audio = flac(0.1)
    largest = audio + bytes(MAX_CLIP_BYTES - len(audio))  # 4 MiB: not decoded, only its header checked
    assert parse_clip("box-a", clip_message("c", largest), RECEIVED).audio == largest
