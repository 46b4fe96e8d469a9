"""Precision, recall, F1 and average precision of scored predictions against a number of true items.

A prediction is a score (a confidence, 0..1) and whether it is right (it matched a label). `positives` counts
the true items, those no prediction found included. At a threshold, the predictions scoring at or above it are
kept: precision is the share of them that are right, recall the share of the positives they find. When one
prediction finds one item (segments), the items found are the right predictions; when a prediction may find
several items and an item be found by several predictions (events), `found` gives, for each item found, the
highest score of those finding it: at a threshold, the items found are those found at or above it.

Average precision is the area under the precision-recall curve taken as steps, without interpolation: the sum
over the distinct scores, highest first, of the recall gained there times the precision there (scikit-learn's
`average_precision_score`). Positives no prediction found are never reached: they hold the curve's recall
below 1 and so lower the average precision, as they should.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

Prediction = tuple[float, bool]  # (score, right)


@dataclass(frozen=True)
class Counts:
    """Right and wrong predictions, and the true items missed, at one threshold; `found`: the items found (the
    right predictions when one finds one)."""

    tp: int
    fp: int
    fn: int
    found: int | None = None

    @property
    def precision(self) -> float | None:
        """None when nothing was predicted: no precision to speak of."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """None when there is nothing to find."""
        found = self.tp if self.found is None else self.found
        return found / (found + self.fn) if found + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class CurvePoint:
    """Keeping the predictions scoring `threshold` or more."""

    threshold: float
    precision: float
    recall: float | None
    kept: int  # predictions at or above the threshold: what the precision rests on


def found_scores(predictions: Sequence[Prediction], found: Sequence[float] | None) -> Sequence[float]:
    return [score for score, right in predictions if right] if found is None else found


def counts_at(
    predictions: Sequence[Prediction], positives: int, threshold: float, found: Sequence[float] | None = None
) -> Counts:
    kept = [right for score, right in predictions if score >= threshold]
    tp = sum(kept)
    items = sum(score >= threshold for score in found_scores(predictions, found))
    return Counts(tp=tp, fp=len(kept) - tp, fn=positives - items, found=items)


def curve(predictions: Sequence[Prediction], positives: int, found: Sequence[float] | None = None) -> list[CurvePoint]:
    """A point at each distinct score, highest first."""
    points = []
    tp = fp = 0
    items = sorted(found_scores(predictions, found), reverse=True)
    reached = 0
    ordered = sorted(predictions, key=lambda p: -p[0])
    for score, group in groupby(ordered, key=lambda p: p[0]):
        for _, right in group:
            tp, fp = tp + right, fp + (not right)
        while reached < len(items) and items[reached] >= score:
            reached += 1
        points.append(CurvePoint(score, tp / (tp + fp), reached / positives if positives else None, tp + fp))
    return points


def average_precision(
    predictions: Sequence[Prediction], positives: int, found: Sequence[float] | None = None
) -> float | None:
    """None without positives (nothing to find: no recall, no area)."""
    if not positives:
        return None
    area, recalled = 0.0, 0.0
    for point in curve(predictions, positives, found):
        assert point.recall is not None
        area += (point.recall - recalled) * point.precision
        recalled = point.recall
    return area


def best_threshold(
    predictions: Sequence[Prediction],
    positives: int,
    target_precision: float,
    min_kept: int = 1,
    found: Sequence[float] | None = None,
) -> CurvePoint | None:
    """The lowest threshold whose precision reaches `target_precision` over `min_kept` predictions or more, so
    the most recall at that precision; None when no threshold reaches it (a precision of 1 over the two highest
    scores says little)."""
    points = curve(predictions, positives, found)
    reaching = [p for p in points if p.precision >= target_precision and p.kept >= min_kept]
    return min(reaching, key=lambda p: p.threshold, default=None)
