"""Detections matched to labels by 3 s segments (BirdNET-Analyzer's way) and as events, worked out by hand."""

from edge.evaluation.matching import Span, by_events, by_segments, touched

PIHA = "Lipaugus vociferans"


def label(start, end, recording="a.wav", species=PIHA):
    return Span(recording, start, end, species)


def detection(start, end, confidence, recording="a.wav", species=PIHA):
    return Span(recording, start, end, species, confidence)


def test_a_span_touches_the_segments_it_overlaps_by_the_minimum():
    assert touched(label(2.8, 3.2), 3.0, 0.5) == [0, 1], "a short call halved by a boundary: both"
    assert touched(label(2.7, 3.1), 3.0, 0.5) == [0], "a short call: where most of it is"
    assert touched(label(2.6, 4.0), 3.0, 0.5) == [1], "0.4 s in the first segment is not enough"
    assert touched(label(0.0, 5.0), 3.0, 0.5) == [0, 1]
    assert touched(label(2.5, 7.5), 3.0, 0.5) == [0, 1, 2], "a 5 s window every 2.5 s: three segments"
    assert touched(label(3.0, 6.0), 3.0, 0.5) == [1], "touching at a boundary is no overlap"


def test_segments_take_the_highest_confidence_and_a_label_marks_them_true():
    labels = [label(1.0, 2.0), label(7.0, 8.0), label(0.5, 1.5, recording="b.wav")]
    detections = [
        detection(0.0, 3.0, 0.4),  # segment 0: right
        detection(0.0, 5.0, 0.6),  # segments 0 (takes 0.6) and 1 (0.6, wrong: nothing there)
        detection(9.0, 12.0, 0.9),  # segment 3: wrong
        detection(0.0, 3.0, 0.8, species="Other species"),  # another species' segment: wrong there
    ]
    matched = by_segments(labels, detections)
    assert matched[PIHA].predictions == [(0.6, True), (0.6, False), (0.9, False)]
    assert matched[PIHA].positives == 3, "segment 2 of a.wav and segment 0 of b.wav are never found"
    assert matched["Other species"].predictions == [(0.8, False)]
    assert matched["Other species"].positives == 0


def test_a_detection_is_right_when_it_overlaps_a_label_and_a_label_is_found_once():
    labels = [label(1.0, 2.0), label(10.0, 11.0)]
    detections = [
        detection(0.0, 5.0, 0.5),  # overlaps the first label, as the next does: both right, the label found once
        detection(0.0, 3.0, 0.7),
        detection(20.0, 23.0, 0.9),  # no label there
        detection(9.0, 12.0, 0.2, recording="b.wav"),  # the second label's time, but another recording
        detection(0.0, 3.0, 0.8, species="Other species"),  # the first label's time, but another species
    ]
    matched = by_events(labels, detections)
    assert matched[PIHA].predictions == [(0.5, True), (0.7, True), (0.9, False), (0.2, False)]
    assert matched[PIHA].positives == 2
    assert matched[PIHA].found == [0.7], "the first label, at its most confident detection; the second never"
    assert matched["Other species"].predictions == [(0.8, False)]


def test_one_long_event_finds_every_call_it_spans():
    calls = [label(t, t + 0.4) for t in (1.0, 3.0, 5.0, 30.0)]
    matched = by_events(calls, [detection(0.0, 10.0, 0.6), detection(29.9, 30.1, 0.3)])[PIHA]
    assert matched.predictions == [(0.6, True), (0.3, True)], "0.1 s of a 0.2 s detection: half of it"
    assert matched.found == [0.6, 0.6, 0.6, 0.3]


def test_a_short_overlap_is_enough_only_for_a_short_call():
    calls = [label(0.0, 4.0), label(9.8, 10.1), label(20.8, 21.1)]
    detections = [detection(3.7, 8.0, 0.9), detection(10.0, 12.0, 0.8), detection(20.9, 23.0, 0.7)]
    matched = by_events(calls, detections)[PIHA]
    assert matched.predictions == [(0.9, False), (0.8, False), (0.7, True)], "0.3 s of 4 s, 0.1 of 0.3: no; 0.2: yes"
