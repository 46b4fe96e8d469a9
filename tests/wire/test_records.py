"""The detection record: offsets always, UTC times when known; the detector's threshold and top-k.

Its golden file is checked in tests/wire/test_golden_records.py."""

from datetime import UTC, datetime

import numpy as np

from edge.events.detector import Detector, DetectorOptions
from edge.types import Detection, Label, Scores, Stream, Window, iso_ms, utc_now
from edge.wire.records import to_record

SPINETAIL = Label("Cranioleuca erythrops", "Red-faced Spinetail", "Cranioleuca erythrops_Red-faced Spinetail")


def window(stream, index=3, hop=2.5, seconds=5.0):
    start = int(index * hop * stream.sample_rate)
    return Window(stream, index, start, start + int(seconds * stream.sample_rate), {}, {})


def test_unknown_time_stays_null():
    record = to_record(Detection(window(Stream("x.wav", 48000)), SPINETAIL, 0.5, "m", "1"))
    assert record["start_utc"] is None and record["end_utc"] is None
    assert (record["start_s"], record["end_s"]) == (7.5, 12.5)


def test_times_are_iso_8601_to_the_millisecond():
    """Every record and store writes times one way: cut (not rounded) to the millisecond, with the offset."""
    assert iso_ms(datetime(2019, 5, 22, 10, 0, 7, 500999, tzinfo=UTC)) == "2019-05-22T10:00:07.500+00:00"
    now = utc_now()
    assert len(now) == 29 and datetime.fromisoformat(now).utcoffset().total_seconds() == 0


def test_detector_threshold_and_top_k():
    labels = tuple(Label(f"S {i}", f"C {i}", f"S {i}_C {i}") for i in range(6))
    scores = Scores(
        window(Stream("x.wav", 48000)), np.array([0.1, 0.9, 0.3, 0.8, 0.25, 0.7], np.float32), labels, "m", "1"
    )
    found = Detector(DetectorOptions(min_confidence=0.25, top_k=3)).update(scores)
    assert [d.label.scientific_name for d in found] == ["S 1", "S 3", "S 5"]
    found = Detector(DetectorOptions(min_confidence=0.25, top_k=10)).update(scores)
    assert [d.label.scientific_name for d in found] == ["S 1", "S 3", "S 5", "S 2", "S 4"]
