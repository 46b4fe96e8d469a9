"""Alert gate: one window over a class's own threshold alerts at once; the interval runs on the audio clock."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from edge.screen.alerts import AlertClass, AlertGate, AlertOptions
from edge.types import Label, Scores, Stream, Window
from edge.wire.records import alert_record

RATE = 48_000
LABELS = (
    Label("Gun", "Gun", "Gun_Gun"),
    Label("Power tools", "Power tools", "Power tools_Power tools"),
    Label("Turdus merula", "Melro-preto", "Turdus merula_Eurasian Blackbird"),
)


def window(stream: Stream, index: int, hop: float = 2.5) -> Window:
    start = round(index * hop * RATE)
    return Window(stream=stream, index=index, start=start, end=start + 5 * RATE, audio={}, offset={})


def scores(stream: Stream, index: int, gun: float, saw: float = 0.0) -> Scores:
    return Scores(
        window=window(stream, index),
        probabilities=np.array([gun, saw, 0.9], np.float32),
        labels=LABELS,
        model="m",
        model_version="1",
    )


class PublishingGate(AlertGate):
    """The gate with its alerts as box-1 publishes them."""

    def check(self, scores: Scores) -> list[dict]:
        detected = datetime(2026, 1, 1, tzinfo=UTC)
        return [alert_record(alert, "box-1", detected) for alert in super().check(scores)]


def gate(min_interval: float = 60.0, **thresholds: float) -> AlertGate:
    classes = tuple(AlertClass(name, t) for name, t in (thresholds or {"Gun": 0.5, "Power tools": 0.5}).items())
    return PublishingGate(AlertOptions(classes, min_interval), LABELS)


def test_first_window_over_threshold_alerts_with_confidence_and_time():
    stream = Stream("rec.wav", RATE)
    alerts_gate = gate(Gun=0.3)
    assert alerts_gate.check(scores(stream, 0, gun=0.29)) == []
    [alert] = alerts_gate.check(scores(stream, 1, gun=0.31))
    assert alert["alert_class"] == "Gun" and alert["kind"] == "alert" and alert["schema"] == "edge.alert/2"
    assert alert["confidence"] == 0.31 and alert["threshold"] == 0.3
    assert (alert["start_s"], alert["end_s"]) == (2.5, 7.5) and alert["held_back"] == 0


def test_interval_holds_back_a_class_and_counts_what_it_held():
    stream = Stream("rec.wav", RATE)
    g = gate(min_interval=30, Gun=0.5, **{"Power tools": 0.5})
    sent = [a for i in range(40) for a in g.check(scores(stream, i, gun=0.9, saw=0.9 if i == 3 else 0))]
    # windows end at 5 + 2.5 i s: Gun alerts at 5 s, 35 s, 65 s, 95 s; the saw once, on its own interval
    assert [(a["alert_class"], a["end_s"]) for a in sent] == [
        ("Gun", 5.0),
        ("Power tools", 12.5),
        ("Gun", 35.0),
        ("Gun", 65.0),
        ("Gun", 95.0),
    ]
    assert [a["held_back"] for a in sent if a["alert_class"] == "Gun"] == [0, 11, 11, 11]
    assert g.stats()["Gun"]["sent"] == 4 and g.stats()["Gun"]["held_back"] == 40 - 4
    assert g.stats()["Power tools"] == {"sent": 1, "held_back": 0, "max_confidence": 0.9, "last_utc": None}


def test_interval_runs_on_the_audio_clock_across_streams():
    """A folder of one-minute files: the second file's first window is 60 s of audio after the first's."""
    g = gate(min_interval=60, Gun=0.5)
    first, second = Stream("a.wav", RATE), Stream("b.wav", RATE)
    assert len(g.check(scores(first, 0, gun=0.9))) == 1
    for i in range(1, 23):  # up to 60 s of the first file
        assert g.check(scores(first, i, gun=0.9)) == []
    assert g.check(scores(second, 0, gun=0.9)) != []  # 60 s + 5 s after the first alert


def test_unknown_class_is_reported_and_names_match_every_way():
    g = AlertGate(AlertOptions((AlertClass("gunshot", 0.5), AlertClass("eurasian blackbird", 0.5)), 60), LABELS)
    assert g.unknown == ("gunshot",)
    assert g.indices == frozenset({2})  # matched by the label's own common name despite the translation


def test_reload_keeps_the_interval():
    stream = Stream("rec.wav", RATE)
    old = gate(Gun=0.5)
    assert old.check(scores(stream, 0, gun=0.9))
    new = gate(Gun=0.4)
    new.carry_over(old)
    assert new.check(scores(stream, 1, gun=0.9)) == [] and new.states["Gun"].threshold == 0.4
