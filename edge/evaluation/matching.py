"""Detections matched to an expert's labels, species by species, in two ways.

Segment-based, as BirdNET-Analyzer's evaluation: each recording is cut into fixed segments (3 s from its
start); a label makes a segment true for its species when they overlap by at least `min_overlap` seconds, and
a detection gives a segment its confidence when they overlap by that much (a segment takes the highest
confidence given to it). The predictions are the segments given a confidence; the positives, the true
segments. Windows that overlap (a 2.5 s hop) or are longer than a segment count once per segment.

Event-based: a detection is right when it overlaps (by `min_overlap` seconds or more) a label of its species
in its recording that no more confident detection took; each label is taken once, so a call found by two
windows counts one true and one false detection. The positives are the labels.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from edge.evaluation.metrics import Prediction


@dataclass(frozen=True)
class Span:
    """Something heard in `recording` from `start` to `end` (seconds from its start): a label (`confidence`
    None) or a detection. A label's box may give its band, `low_hz` to `high_hz` (Raven's), drawn by reports
    and never matched on."""

    recording: str
    start: float
    end: float
    species: str
    confidence: float | None = None
    low_hz: float | None = None
    high_hz: float | None = None


@dataclass(frozen=True)
class Matched:
    """One species' predictions and the number of true items they were to find."""

    predictions: list[Prediction]
    positives: int


def overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, min(a_end, b_end) - max(a_start, b_start))


def by_segments(
    labels: Iterable[Span], detections: Iterable[Span], segment: float = 3.0, min_overlap: float = 0.5
) -> dict[str, Matched]:
    """Species -> its segments' predictions and the number of true segments."""
    truth: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for label in labels:
        truth[label.species] |= {(label.recording, k) for k in touched(label, segment, min_overlap)}
    scores: dict[str, dict[tuple[str, int], float]] = defaultdict(dict)
    for d in detections:
        assert d.confidence is not None
        given = scores[d.species]
        for k in touched(d, segment, min_overlap):
            given[(d.recording, k)] = max(given.get((d.recording, k), 0.0), d.confidence)
    return {
        species: Matched(
            [(score, key in truth[species]) for key, score in sorted(scores[species].items())],
            len(truth[species]),
        )
        for species in sorted(truth.keys() | scores.keys())
    }


def touched(span: Span, segment: float, min_overlap: float) -> list[int]:
    """The segments `span` overlaps by at least `min_overlap` seconds, or, for a span shorter than twice that,
    by half of itself: a short call cut by a boundary counts where most of it is, or in both when halved."""
    needed = min(min_overlap, (span.end - span.start) / 2)
    first, last = math.floor(span.start / segment), math.ceil(span.end / segment)
    return [
        k
        for k in range(max(0, first), last)
        if overlap(span.start, span.end, k * segment, (k + 1) * segment) >= max(needed, 1e-9)
    ]


def by_events(labels: Iterable[Span], detections: Iterable[Span], min_overlap: float = 0.0) -> dict[str, Matched]:
    """Species -> its detections, each right or not, and the number of labels."""
    open_labels: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for label in labels:
        open_labels[(label.species, label.recording)].append(label)
    positives: dict[str, int] = defaultdict(int)
    for (species, _), spans in open_labels.items():
        positives[species] += len(spans)
    predictions: dict[str, list[Prediction]] = defaultdict(list)
    for d in sorted(detections, key=lambda d: (-(d.confidence or 0.0), d.recording, d.start)):
        assert d.confidence is not None
        candidates = open_labels[(d.species, d.recording)]
        taken = best_overlap(d, candidates, min_overlap)
        if taken is not None:
            candidates.remove(taken)
        predictions[d.species].append((d.confidence, taken is not None))
    return {
        species: Matched(predictions[species], positives[species])
        for species in sorted(positives.keys() | predictions.keys())
    }


def best_overlap(detection: Span, labels: list[Span], min_overlap: float) -> Span | None:
    """The label `detection` overlaps most, if by `min_overlap` or more (and by something at all)."""
    best, most = None, 0.0
    for label in labels:
        shared = overlap(detection.start, detection.end, label.start, label.end)
        if shared > most and shared >= min_overlap:
            best, most = label, shared
    return best
