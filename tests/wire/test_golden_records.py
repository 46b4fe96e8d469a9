"""Every record schema against its golden file: a field renamed, added, moved or written differently is a
conscious act.

Each test builds its record the way the box does, serialises it as the box writes it and compares the text,
key order included, with tests/golden/<schema>.json (the same record, indented for reading). To change a
schema on purpose, run the tests with EDGE_UPDATE_GOLDEN=1: they rewrite the golden files from what the code
writes now; review the diff and commit it with the change.

Values that differ from run to run or machine to machine (wall-clock times, CPU, memory, free disk space, the
size of FLAC clips, which depends on the encoder's version) are checked for their type or format and written
into the comparison as VARIES.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np

from edge.screen.alerts import AlertClass, AlertGate, AlertOptions
from edge.types import Detection, Event, Label, Scores, Stream, Window
from edge.wire.records import alert_record, event_record, status_payload, to_json, to_record
from support.config import write_config
from support.paths import DATA, GOLDEN
from support.processes import DaemonProcess

UPDATE = "EDGE_UPDATE_GOLDEN"
VARIES = "VARIES"
ISO_UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
RECORDING = Stream("site-a/S4A03895_20190522_120000.wav", 22050, datetime(2019, 5, 22, 10, tzinfo=UTC))


def assert_golden(name: str, written: str, serialise: Callable[[dict], str] = to_json) -> None:
    """`written` (one record, as `serialise` writes it) is the golden record `name`, byte for byte."""
    path = GOLDEN / f"{name}.json"
    if os.environ.get(UPDATE) == "1":
        path.write_text(json.dumps(json.loads(written), indent=2, ensure_ascii=False) + "\n")
    golden = serialise(json.loads(path.read_text()))
    assert written == golden, (
        f"the {name} record is no longer the one in {path}; if that is meant, rerun with "
        f"{UPDATE}=1 to rewrite the golden files and commit them with the change"
    )


def varies(record: dict, name: str, kind: type | tuple[type, ...]) -> None:
    """`record[name]`, of type `kind`, differs from run to run: compared as VARIES."""
    assert isinstance(record[name], kind), f"{name}: {record[name]!r} is not {kind}"
    record[name] = VARIES


def utc_varies(record: dict, name: str) -> None:
    assert ISO_UTC_MS.fullmatch(record[name]), f"{name}: {record[name]!r} is not ISO UTC with milliseconds"
    record[name] = VARIES


def test_detection_record_matches_golden():
    start = int(3 * 2.5 * RECORDING.sample_rate)
    window = Window(RECORDING, 3, start, start + int(5.0 * RECORDING.sample_rate), {}, {})
    label = Label("Cranioleuca erythrops", "Red-faced Spinetail", "Cranioleuca erythrops_Red-faced Spinetail")
    record = to_record(Detection(window, label, 0.912345678, "birdnet-v2.4", "2.4"))
    assert record == json.loads((GOLDEN / "detection_v1.json").read_text())
    assert_golden("detection_v1", to_json(record))


def test_event_record_matches_golden():
    label = Label("Strix aluco", "Tawny Owl", "Strix aluco_Tawny Owl")
    event = Event(
        id="2f0d5c61-7d4b-5b8e-9c55-2b1f1a8c7e10",
        kind="start",
        stream=RECORDING,
        label=label,
        start=int(7.5 * 22050),
        end=int(12.5 * 22050),
        confidence=0.912345,
        model="birdnet-v2.4",
        model_version="2.4",
    )
    assert event_record(event, "wetland-03") == json.loads((GOLDEN / "event_v1.json").read_text())
    assert_golden("event_v1", to_json(event_record(event, "wetland-03")))


def test_alert_record_matches_golden():
    """The second gunshot alert of a recording: four windows over the threshold held back before it."""
    labels = (Label("Gun", "Gun", "Gun_Gun"), Label("Strix aluco", "Tawny Owl", "Strix aluco_Tawny Owl"))
    gate = AlertGate(AlertOptions((AlertClass("Gun", 0.5),), min_interval=12.0), labels)
    rate = RECORDING.sample_rate
    alerts = []
    for index in range(6):
        start = round(index * 2.5 * rate)
        window = Window(RECORDING, index, start, start + 5 * rate, {}, {})
        scores = Scores(window, np.array([0.8765432, 0.9], np.float32), labels, "birdnet-v2.4", "2.4")
        alerts += gate.check(scores)
    assert [a.held_back for a in alerts] == [0, 4]
    record = alert_record(alerts[1], "wetland-03", detected=datetime.now(UTC))
    utc_varies(record, "detected_utc")
    assert_golden("alert_v2", to_json(record))


def test_health_record_matches_golden(tmp_path):
    """The daemon's last health record after replaying a ten-second recording, with clips and an alert class
    on, as written to its daily file."""
    data_dir = tmp_path / "data"
    config = write_config(
        tmp_path / "edge.toml",
        data_dir,
        {"type": "replay", "paths": [str(DATA / "opso_rugr_drum.wav")]},
        health={"interval_seconds": 3600},
        clips={"enabled": True},
        alerts={"classes": [{"name": "Gun", "threshold": 0.5}]},
    )
    daemon = DaemonProcess(config)
    try:
        assert daemon.wait_exit(timeout=600) == 0, daemon.stderr_now()
    finally:
        daemon.close()
    [written] = (data_dir / "records" / "health").glob("*.jsonl")
    record = json.loads(written.read_text().splitlines()[-1])
    utc_varies(record, "time_utc")
    for name in (
        "uptime_s",
        "interval_s",
        "real_time_factor",
        "cpu_percent",
        "rss_mb",
        "disk_free_mb",
        "disk_free_percent",
        "cpu_cost",
        "clips_bytes",
    ):
        varies(record, name, (int, float))
    assert record["clock"] in ("synchronized", "unsynchronized", "implausible", "unknown")
    record["clock"] = VARIES
    for disk in record["disks"].values():
        disk["path"] = str(Path(disk["path"]).relative_to(data_dir))
        varies(disk, "free_mb", (int, float))
        varies(disk, "free_percent", (int, float))
    for member in record["member_ms_per_crop"]:
        varies(record["member_ms_per_crop"], member, (int, float))
    assert_golden("health_v1", to_json(record))


def test_status_record_matches_golden():
    """The retained status record of a box whose configuration gives its position: `stopped` with the
    uplink's final figures; `online` and `offline` (the last will) are the same record without them; a box
    without a position leaves latitude and longitude out."""
    place = (52.5163, 13.3777)
    payload = status_payload("wetland-03", "stopped", place, outbox_pending=2, mqtt_sent=17)
    record = json.loads(payload)
    utc_varies(record, "time_utc")
    assert record["version"] == version("edge")
    record["version"] = VARIES
    assert_golden("status_v1", json.dumps(record), serialise=json.dumps)
    golden = json.loads((GOLDEN / "status_v1.json").read_text())
    for state, where in (("online", place), ("offline", place), ("online", None)):
        record = json.loads(status_payload("wetland-03", state, where))
        utc_varies(record, "time_utc")
        record["version"] = VARIES
        expected = {**golden, "state": state}
        del expected["outbox_pending"], expected["mqtt_sent"]
        if where is None:
            del expected["latitude"], expected["longitude"]
        assert json.dumps(record) == json.dumps(expected)
