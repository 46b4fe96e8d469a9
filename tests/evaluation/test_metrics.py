"""Precision, recall, F1, the curve and average precision, against cases worked out by hand."""

import pytest

from edge.evaluation.metrics import Counts, average_precision, best_threshold, counts_at, curve

# Five predictions, three right; four positives, so one is never found.
PREDICTIONS = [(0.9, True), (0.8, False), (0.7, True), (0.7, False), (0.3, True)]


def test_counts_at_a_threshold():
    at = counts_at(PREDICTIONS, positives=4, threshold=0.7)
    assert at == Counts(tp=2, fp=2, fn=2, found=2)
    assert (at.precision, at.recall, at.f1) == (0.5, 0.5, 0.5)
    everything = counts_at(PREDICTIONS, 4, 0.0)
    assert (everything.precision, everything.recall) == (0.6, 0.75)
    assert everything.f1 == pytest.approx(2 * 0.6 * 0.75 / 1.35)


def test_nothing_predicted_or_nothing_to_find_has_no_number():
    assert counts_at(PREDICTIONS, 4, 0.95).precision is None
    assert counts_at(PREDICTIONS, 4, 0.95).recall == 0.0
    assert counts_at([(0.5, False)], 0, 0.1).recall is None
    assert counts_at([(0.5, False)], 0, 0.1).f1 is None


def test_the_curve_has_a_point_per_distinct_score_ties_taken_together():
    points = [(p.threshold, p.precision, p.recall) for p in curve(PREDICTIONS, 4)]
    assert points == [(0.9, 1.0, 0.25), (0.8, 0.5, 0.25), (0.7, 0.5, 0.5), (0.3, 0.6, 0.75)]


def test_average_precision_is_the_stepwise_area_with_missed_positives_never_reached():
    # recall steps 0.25 at precision 1, 0.25 at 0.5, 0.25 at 0.6; the fourth positive is never found
    assert average_precision(PREDICTIONS, 4) == pytest.approx(0.25 * 1.0 + 0.25 * 0.5 + 0.25 * 0.6)
    assert average_precision([(0.2, True), (0.1, True)], 2) == 1.0
    assert average_precision([], 3) == 0.0
    assert average_precision([(0.5, False)], 0) is None


def test_the_threshold_for_a_target_precision_keeps_the_most_recall():
    assert best_threshold(PREDICTIONS, 4, 0.9).threshold == 0.9
    assert best_threshold(PREDICTIONS, 4, 0.6).threshold == 0.3, "0.3 reaches 0.6 again, with more recall"
    assert best_threshold([(0.5, False)], 1, 0.5) is None


def test_a_threshold_rests_on_enough_detections():
    """Precision 1 over the single highest score is no basis for a threshold."""
    assert [p.kept for p in curve(PREDICTIONS, 4)] == [1, 2, 4, 5]
    assert best_threshold(PREDICTIONS, 4, 0.9, min_kept=2) is None
    assert best_threshold(PREDICTIONS, 4, 0.5, min_kept=2).threshold == 0.3


def test_items_found_by_a_prediction_that_finds_several():
    """An event spanning two calls finds both: recall counts the calls found, precision the events right."""
    predictions, found = [(0.9, True), (0.5, False), (0.4, True)], [0.9, 0.9, 0.4]
    points = [(p.threshold, p.precision, p.recall) for p in curve(predictions, 3, found)]
    assert points == [(0.9, 1.0, 2 / 3), (0.5, 0.5, 2 / 3), (0.4, 2 / 3, 1.0)]
    at = counts_at(predictions, 3, 0.5, found)
    assert (at.tp, at.fp, at.fn, at.found, at.precision, at.recall) == (1, 1, 1, 2, 0.5, 2 / 3)
    assert average_precision(predictions, 3, found) == pytest.approx(2 / 3 * 1.0 + 1 / 3 * 2 / 3)
