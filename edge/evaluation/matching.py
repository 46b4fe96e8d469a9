"""Detections matched to an expert's labels, species by species, in two ways.

Segment-based, as BirdNET-Analyzer's evaluation: each recording is cut into fixed segments (3 s from its
start); a label makes a segment true for its species when they overlap by at least `min_overlap` seconds, and
a detection gives a segment its confidence when they overlap by that much (a segment takes the highest
confidence given to it). The predictions are the segments given a confidence; the positives, the true
segments. Windows that overlap (a 2.5 s hop) or are longer than a segment count once per segment.

Event-based: a detection is right when it overlaps a label of its species in its recording (by `min_overlap`
seconds, or half of the shorter of the two); a label is found, once, by the detections overlapping it so, at the
highest confidence among them. A call found by two windows is two right detections and one label found; a
daemon's event spanning a minute of calls is one right detection that finds them all. The positives are the
labels.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from edge.evaluation.metrics import Prediction, found_scores


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
    """One species' predictions and the number of true items they were to find; `found`: the score at which
    each item found is found, when a prediction may find several (None: each right prediction finds one)."""

    predictions: list[Prediction]
    positives: int
    found: list[float] | None = None

    def found_scores(self) -> list[float]:
        return list(found_scores(self.predictions, self.found))

    def above(self, threshold: float) -> Matched:
        """The predictions scoring `threshold` or more, and the items they find."""
        kept = [p for p in self.predictions if p[0] >= threshold]
        return Matched(kept, self.positives, None if self.found is None else [s for s in self.found if s >= threshold])


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


def by_events(labels: Iterable[Span], detections: Iterable[Span], min_overlap: float = 0.5) -> dict[str, Matched]:
    """Species -> its detections, each right or not, the number of labels, and the confidence each label found
    was found at."""
    truth: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for label in labels:
        truth[(label.species, label.recording)].append(label)
    positives: dict[str, int] = defaultdict(int)
    for (species, _), spans in truth.items():
        positives[species] += len(spans)
    predictions: dict[str, list[Prediction]] = defaultdict(list)
    found: dict[tuple[str, str, int], float] = {}
    for d in detections:
        assert d.confidence is not None
        hits = [i for i, label in enumerate(truth.get((d.species, d.recording), ())) if shared(d, label, min_overlap)]
        predictions[d.species].append((d.confidence, bool(hits)))
        for i in hits:
            key = (d.species, d.recording, i)
            found[key] = max(found.get(key, 0.0), d.confidence)
    found_by: dict[str, list[float]] = defaultdict(list)
    for (species, _, _), score in sorted(found.items()):
        found_by[species].append(score)
    return {
        species: Matched(predictions[species], positives[species], found_by[species])
        for species in sorted(positives.keys() | predictions.keys())
    }


def shared(a: Span, b: Span, min_overlap: float) -> bool:
    """Whether `a` and `b` overlap by `min_overlap` seconds, or by half of the shorter when it is under twice
    that (a 0.3 s call inside a window is found), and by something at all."""
    needed = min(min_overlap, (a.end - a.start) / 2, (b.end - b.start) / 2)
    return overlap(a.start, a.end, b.start, b.end) >= max(needed, 1e-9)
