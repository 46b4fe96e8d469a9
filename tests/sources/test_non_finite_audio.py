"""Samples that are not numbers (inf, NaN) or absurdly large, from a broken recorder or a corrupted float WAV:
never a record with NaN or an infinity, never an alert from the damage, and the damage said and counted."""

import csv
import json
import math
import sqlite3
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from edge.sinks.daily import DailyFiles
from edge.sinks.files import file_sinks
from edge.sinks.outbox import Outbox
from edge.types import Detection, Label, Stream, Window
from edge.wire.records import NonFiniteNumber, to_record
from support.config import write_config
from support.processes import DaemonProcess, edge_cli
from support.records import read_records

GUN = Label("Gun", "Gun", "Gun_Gun", species=False)


def strict_json(line: str) -> dict:
    """JSON as the standard has it: NaN and Infinity are not numbers of it."""

    def refuse(constant):
        raise AssertionError(f"{constant} in {line[:200]}")

    return json.loads(line, parse_constant=refuse)


def damaged_recordings(data, folder):
    """Real birdsong with 1,000 samples of inf, a file of NaN, and birdsong with 1,000 samples of 1e30."""
    audio, rate = sf.read(str(data / "opso_birds_10s.wav"), dtype="float32")
    folder.mkdir(exist_ok=True)
    for name, value in (("inf.wav", np.inf), ("huge.wav", 1e30)):
        damaged = audio.copy()
        damaged[3 * rate : 3 * rate + 1000] = value
        sf.write(str(folder / name), damaged, rate, subtype="FLOAT")
    sf.write(str(folder / "nan.wav"), np.full(10 * rate, np.nan, np.float32), rate, subtype="FLOAT")
    return ["huge.wav", "inf.wav", "nan.wav"]


def all_records(folder):
    """Every line of every JSONL file under `folder`, read strictly, and every CSV cell."""
    records = [
        strict_json(line)
        for path in sorted(folder.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    for path in folder.rglob("*.csv"):
        for row in csv.DictReader(path.open()):
            assert not {v.lower() for v in row.values() if v} & {"nan", "inf", "-inf"}, row
    return records


def test_replay_says_what_was_damaged_and_writes_only_finite_numbers(data, tmp_path):
    damaged_recordings(data, tmp_path / "in")
    result = edge_cli(
        "replay", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--min-conf", "0.01", "--format", "jsonl,csv"
    )
    records = all_records(tmp_path / "out")
    assert records and all(math.isfinite(r["confidence"]) for r in records)
    assert not [r for r in records if r["source"] == "nan.wav"], "silence, not detections, in place of NaN"
    output = " ".join(result.stdout.split())
    assert "damaged nan.wav: 10.00 s of 10.0 s were samples that are not numbers" in output, result.stdout
    assert "damaged inf.wav: 0.03 s of 10.1 s" in output, result.stdout
    assert "huge.wav" not in output, "large but finite samples are audio: scored, finite"


def test_folder_daemon_counts_damage_alerts_on_none_of_it_and_quarantines_with_a_note(data, tmp_path):
    inbox = tmp_path / "inbox"
    names = damaged_recordings(data, inbox)
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": str(inbox), "settle_seconds": 1.5, "rescan_seconds": 2},
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("recording_done", file="huge.wav")
        for name in ("inf.wav", "nan.wav"):
            daemon.wait_log("recording_quarantined", file=name)
        seen = len(daemon.logged("health"))
        deadline = time.monotonic() + 120
        while len(daemon.logged("health")) <= seen:  # the health record that counts the last file
            assert time.monotonic() < deadline and daemon.process.poll() is None, "no health record"
            time.sleep(0.1)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert code == 0
    records = all_records(tmp_path / "data" / "records")
    assert {r["source"] for r in records if "source" in r} <= set(names)
    assert not read_records(tmp_path / "data" / "records", "alerts"), "inf became Gun, Engine, Siren... alerts"
    health = read_records(tmp_path / "data" / "records", "health")[-1]
    assert health["damaged_seconds"] == pytest.approx(10.03, abs=0.01) and health["files_quarantined"] == 2
    note = (tmp_path / "data" / "quarantine" / "nan.wav.error.txt").read_text()
    assert "10.00 s of 10.0 s were samples that are not numbers (inf or NaN)" in note
    with sqlite3.connect(tmp_path / "data" / "state.sqlite") as db:
        rows = dict(db.execute("SELECT path, error FROM recordings"))
    assert "0.03 s of 10.1 s were samples that are not numbers" in rows["inf.wav"]
    assert rows["huge.wav"] is None


def detection(confidence: float) -> Detection:
    stream = Stream("x.wav", 48000)
    return Detection(Window(stream, 0, 0, 240000, {}, {}), GUN, confidence, "m", "1")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_every_writer_refuses_a_non_finite_number_and_names_the_field(tmp_path, bad):
    record = {**to_record(detection(0.5)), "kind": "start", "confidence": bad, "seq": 1}
    daily = DailyFiles(tmp_path / "records", fsync=False)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    health = {"schema": "edge.health/1", "seq": 2, "alerts": {"Gun": {"max_confidence": bad}}}
    for write, field in (
        (lambda: daily.publish("events", record), "confidence"),
        (lambda: daily.publish("health", health), "alerts"),
        (lambda: outbox.add("events", record), "confidence"),
    ):
        with pytest.raises(NonFiniteNumber, match=f"'{field}'"):
            write()
    for sink in file_sinks(tmp_path / "out", ("jsonl", "csv", "raven")):
        with pytest.raises(NonFiniteNumber, match="'confidence'"):
            sink.emit(detection(bad))
        sink.close()
    assert outbox.pending(0, 10) == [] and outbox.next_seq() == 1, "nothing committed"
    outbox.close()
    assert not list((tmp_path / "records").rglob("*.jsonl")) and not list((tmp_path / "records").rglob("*.csv"))
    assert (tmp_path / "out" / "detections.jsonl").read_text() == ""
    assert len((tmp_path / "out" / "detections.csv").read_text().splitlines()) == 1, "the header alone"


def test_a_sound_card_delivering_inf_and_nan_gives_silence_counted_as_damage(tmp_path):
    """The virtual microphone (tests/support/pulse.py: a float32 sink, as many USB microphones are) plays 1 s of inf
    then 1 s of NaN; the capture holds only finite samples, and the health figures count the 2 s."""
    from edge.sources.microphone import Microphone, MicrophoneConfig
    from support.pulse import pulse_server

    rate = 48000
    bad = np.full(2 * rate, np.nan, np.float32)
    bad[:rate] = np.inf
    sf.write(str(tmp_path / "bad.wav"), bad, rate, subtype="FLOAT")
    with pulse_server(tmp_path / "pulse") as server:
        mic = Microphone(MicrophoneConfig(device="pulse", sample_rate=rate, silence_seconds=30))
        mic.start()
        stop, chunks, player = threading.Event(), [], None
        deadline = time.monotonic() + 60
        try:
            for item in mic.chunks(stop):
                if item is not None:
                    chunks.append(item)
                    player = player or server.play(tmp_path / "bad.wav")
                if mic.stats().get("damaged_samples", 0) >= 2 * rate or time.monotonic() > deadline:
                    stop.set()
        finally:
            mic.stop()
        assert player is not None and player.wait(timeout=60) == 0
    stats = mic.stats()
    assert stats["damaged_samples"] == 2 * rate and stats["damaged_seconds"] == 2.0, stats
    assert all(np.isfinite(chunk.samples).all() for chunk in chunks)
