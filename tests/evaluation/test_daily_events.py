"""The daemon's daily event files as detections: `edge evaluate --detections` given its data, records or events
folder reads every day's events once, from the JSON lines or, when only those were written, the CSV files."""

from datetime import UTC, datetime

import pytest

from edge.evaluation.detections import read_detections
from edge.evaluation.matching import Span
from edge.sinks.daily import DailyFiles

PIHA = "Lipaugus vociferans"


def event(id_: str, kind: str, start: float, end: float, confidence: float, species: str = PIHA) -> dict:
    return {
        "schema": "edge.event/1",
        "id": id_,
        "kind": kind,
        "box": "test-box",
        "source": "site-a/ScreamingPiha7.mp3",
        "start_s": start,
        "end_s": end,
        "scientific_name": species,
        "confidence": confidence,
    }


def write_days(records_dir, formats):
    """Two UTC days of events, one of them ending after midnight, and an end written twice (a recording taken
    up again after a power cut publishes its events under the same ids)."""
    files = DailyFiles(records_dir, formats, fsync=False, clock=lambda: datetime(2024, 5, 1, tzinfo=UTC))
    files.publish("events", event("a", "start", 0.0, 5.0, 0.4), day="2024-05-01")
    files.publish("events", event("a", "update", 0.0, 10.0, 0.6), day="2024-05-01")
    files.publish("events", event("a", "end", 0.0, 20.0, 0.6), day="2024-05-01")
    files.publish("events", event("b", "start", 40.0, 45.0, 0.9, "Strix aluco"), day="2024-05-01")
    files.publish("events", event("b", "end", 40.0, 50.0, 0.9, "Strix aluco"), day="2024-05-02")
    files.publish("events", event("b", "end", 40.0, 50.0, 0.9, "Strix aluco"), day="2024-05-02")
    files.publish("health", {"schema": "edge.health/1", "uptime_s": 1.0}, day="2024-05-02")


EXPECTED = [
    Span("ScreamingPiha7", 0.0, 20.0, PIHA, 0.6),
    Span("ScreamingPiha7", 40.0, 50.0, "Strix aluco", 0.9),
]


@pytest.mark.parametrize("formats", [("jsonl", "csv"), ("csv",)])
def test_every_day_of_events_once(tmp_path, formats):
    write_days(tmp_path / "data" / "records", formats)
    for folder in (tmp_path / "data", tmp_path / "data" / "records", tmp_path / "data" / "records" / "events"):
        assert read_detections(folder) == EXPECTED, folder
    assert read_detections(tmp_path / "data" / "records" / "events" / "2024-05-02.csv") == EXPECTED[1:] * 2, (
        "one file is read as it is"
    )
