"""Smoothing, hysteresis and the event lifecycle, on synthetic window scores."""

import numpy as np
import pytest

from edge.events.smoother import Smoother, SmootherOptions
from edge.types import Call, Label, Scores, Stream, Window

RATE = 48000
LABELS = (
    Label("Strix aluco", "Tawny Owl", "Strix aluco_Tawny Owl"),
    Label("Turdus merula", "Eurasian Blackbird", "Turdus merula_Eurasian Blackbird"),
)


def run(series, options, hop=2.5, seconds=5.0, stream=None):
    """Feed per-window [owl, blackbird] scores; return (window index when emitted, event) pairs."""
    stream = stream or Stream("s", RATE)
    smoother = Smoother(options)
    out = []
    for k, values in enumerate(series):
        start = int(k * hop * RATE)
        window = Window(stream, k, start, start + int(seconds * RATE), {}, {})
        scores = Scores(window, np.array(values, np.float32), LABELS, "m", "1")
        out += [(k, e) for e in smoother.update(scores)]
    return out + [(len(series), e) for e in smoother.close()], smoother


def kinds(events):
    return [(k, e.kind, e.label.scientific_name) for k, e in events]


def test_single_confident_window_is_an_event():
    """A lone owl call in one window: started (one hop late at most, for the neighbour smoothing) and ended."""
    series = [[0.0, 0.0]] * 3 + [[0.92, 0.0]] + [[0.0, 0.0]] * 8
    events, _ = run(series, SmootherOptions(end_after=10.0))
    assert kinds(events)[0] == (4, "start", "Strix aluco"), "emitted when the next window arrives"
    start = events[0][1]
    assert start.start_seconds == 7.5 and start.confidence == pytest.approx(0.92)
    assert [e.kind for _, e in events] == ["start", "end"]
    assert len({e.id for _, e in events}) == 1


def test_isolated_moderate_hits_are_smoothed_away_and_steady_ones_are_not():
    flicker = [[0.6, 0.0], [0.05, 0.0]] * 6
    events, _ = run(flicker, SmootherOptions())
    assert not events
    steady = [[0.6, 0.0]] * 6
    events, _ = run(steady, SmootherOptions())
    assert kinds(events)[0] == (1, "start", "Strix aluco")


def test_without_neighbour_smoothing_start_is_immediate():
    events, _ = run([[0.0, 0.0], [0.0, 0.7]], SmootherOptions(neighbours=0.0))
    assert kinds(events)[0] == (1, "start", "Turdus merula")


def test_hysteresis_keeps_an_event_between_off_and_on_and_ends_after_quiet():
    series = [[0.0, 0.7]] * 2 + [[0.0, 0.4]] * 6 + [[0.0, 0.0]] * 6
    events, _ = run(series, SmootherOptions(neighbours=0.0, on=0.5, off=0.35, end_after=5.0))
    assert [e.kind for _, e in events] == ["start", "end"]
    end = events[-1]
    assert end[0] == 9, "5 s after the last window at or above `off` (window 7, ending at 22.5 s)"
    assert end[1].end_seconds == 22.5


def test_updates_when_confidence_grows():
    series = [[0.6, 0.0], [0.7, 0.0], [0.72, 0.0], [0.9, 0.0]]
    events, _ = run(series, SmootherOptions(neighbours=0.0, update_delta=0.05))
    assert [e.kind for _, e in events] == ["start", "update", "update", "end"]
    assert [round(e.confidence, 2) for _, e in events] == [0.6, 0.7, 0.9, 0.9]


def test_min_duration_and_cooldown():
    options = SmootherOptions(neighbours=0.0, min_duration=10.0, instant=1.0, end_after=2.5, cooldown=30.0)
    short = [[0.6, 0.0]] * 2 + [[0.0, 0.0]] * 4
    events, _ = run(short, options)
    assert not events, "7.5 s of confident windows is under the 10 s minimum"
    long = [[0.6, 0.0]] * 3 + [[0.0, 0.0]] * 2 + [[0.6, 0.0]] * 4 + [[0.0, 0.0]] * 20 + [[0.6, 0.0]] * 3
    events, smoother = run(long, options)
    assert [e.kind for _, e in events] == ["start", "end", "start", "end"]
    assert smoother.suppressed >= 1, "the return within the cooldown is counted, not reported"


def test_event_ids_are_stable_and_distinct():
    series = [[0.9, 0.9]] + [[0.0, 0.0]] * 6
    a, _ = run(series, SmootherOptions(neighbours=0.0, end_after=5.0))
    b, _ = run(series, SmootherOptions(neighbours=0.0, end_after=5.0))
    assert [e.id for _, e in a] == [e.id for _, e in b]
    assert len({e.id for _, e in a}) == 2


def test_stream_end_closes_events():
    events, _ = run([[0.9, 0.0]] * 3, SmootherOptions())
    assert [e.kind for _, e in events] == ["start", "end"]
    assert events[-1][1].end_seconds == 10.0


def test_a_bat_pass_counts_the_calls_of_its_species_in_it():
    """Calls come with the first window holding them (a call detector's chunk); an event of their species
    counts those inside it once, with their median peak frequency; the other species' calls are not its."""
    stream = Stream("moth", RATE)
    bat, other = LABELS
    calls_at = {1: [(2.6, 45000.0), (3.1, 47000.0)], 2: [(5.2, 46000.0), (5.4, 30000.0, other)], 6: [(15.1, 44000.0)]}
    smoother = Smoother(SmootherOptions(neighbours=0, end_after=5.0))
    events = []
    for k, values in enumerate([[0.0, 0.0], [0.9, 0.0], [0.9, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]):
        start = int(k * 2.5 * RATE)
        window = Window(stream, k, start, start + 5 * RATE, {}, {})
        calls = tuple(
            Call(stream, at, at + 0.005, 40000.0, 60000.0, peak, 0.8, rest[0] if rest else bat, 0.7, "bd", "1")
            for at, peak, *rest in calls_at.get(k, [])
        )
        events += smoother.update(Scores(window, np.array(values, np.float32), LABELS, "m", "1", calls))
    end = next(e for e in events + smoother.close() if e.kind == "end")
    assert (end.start_seconds, end.end_seconds) == (2.5, 10.0)
    assert end.calls == 3, "2.6, 3.1 and 5.2 s: the other species' call and the one after the event are not its"
    assert end.peak_freq == 46000.0
