"""An evaluation's numbers: per species and overall at a threshold, and the thresholds it proposes.

Species with labels are scored; species detected but never labelled are reported apart (an expert who boxed
only some species leaves the others' detections unjudged: they may be real). Overall pools every labelled
species' predictions (micro-averaging). A threshold is proposed for a species when the labels behind it are
enough (`min_support` true items) and some threshold reaches the target precision over `min_support`
detections or more: the lowest such, which keeps the most recall; every other species keeps the daemon's own
threshold ([smoothing] on) and the file says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.evaluation.matching import Matched
from edge.evaluation.metrics import average_precision, best_threshold, counts_at, curve


def scores(matched: Matched, threshold: float) -> dict:
    """The numbers at `threshold`, and the precision-recall curve down to the lowest confidence detected (its
    part at or above `threshold` is the area the average precision measures)."""
    at = counts_at(matched.predictions, matched.positives, threshold, matched.found)
    kept = matched.above(threshold)
    return {
        "precision": at.precision,
        "recall": at.recall,
        "f1": at.f1,
        "ap": average_precision(kept.predictions, kept.positives, kept.found),
        "support": matched.positives,
        "tp": at.tp,
        "fp": at.fp,
        "fn": at.fn,
        "found": at.found,
        "curve": [
            {"threshold": p.threshold, "precision": round(p.precision, 4), "recall": round(p.recall or 0.0, 4)}
            for p in curve(matched.predictions, matched.positives, matched.found)
        ],
    }


def evaluation(matched: dict[str, Matched], threshold: float) -> dict:
    """Per labelled species, overall, the labelled species never detected, and the unlabelled detected."""
    labelled = {species: m for species, m in matched.items() if m.positives}
    pooled = Matched(
        [p for m in labelled.values() for p in m.predictions],
        sum(m.positives for m in labelled.values()),
        [s for m in labelled.values() for s in m.found_scores()],
    )
    return {
        "species": {species: scores(m, threshold) for species, m in labelled.items()},
        "overall": scores(pooled, threshold),
        "never_detected": sorted(s for s, m in labelled.items() if not any(p[0] >= threshold for p in m.predictions)),
        "unlabelled": {
            species: {"detections": n, "max_confidence": max(p[0] for p in m.predictions)}
            for species, m in matched.items()
            if not m.positives and (n := sum(p[0] >= threshold for p in m.predictions))
        },
    }


@dataclass(frozen=True)
class Proposal:
    species: str
    threshold: float | None  # None: the daemon's own, [smoothing] on
    precision: float | None
    recall: float | None
    support: int
    why: str  # why the default is kept, or a remark on the threshold


def proposals(matched: dict[str, Matched], target: float, min_support: int) -> list[Proposal]:
    found = []
    for species, m in sorted(matched.items()):
        if not m.positives:
            continue
        if m.positives < min_support:
            found.append(
                Proposal(species, None, None, None, m.positives, f"{m.positives} labelled, fewer than {min_support}")
            )
            continue
        best = best_threshold(m.predictions, m.positives, target, min_kept=min_support, found=m.found)
        if best is None:
            why = f"no threshold reaches precision {target} over {min_support} detections or more"
            found.append(Proposal(species, None, None, None, m.positives, why))
        else:
            lowest = best.threshold == min(score for score, _ in m.predictions)
            why = (
                "the lowest confidence detected: a replay with a lower --min-conf may find a lower one"
                if lowest
                else ""
            )
            found.append(Proposal(species, best.threshold, best.precision, best.recall, m.positives, why))
    return found


def thresholds_file(found: list[Proposal], target: float) -> str:
    """The thresholds file the daemon reads (`[species] thresholds_file`), each number with its support. A
    species without a line starts its events at the daemon's own threshold (`[smoothing] on`)."""
    lines = [f"# thresholds for precision {target} on labelled recordings; other species: [smoothing] on"]
    for p in found:
        if p.threshold is None:
            lines.append(f"# {p.species}: no line, so [smoothing] on ({p.why})")
        else:
            lines.append(
                f"{p.species},{p.threshold:.4f}  # precision {p.precision:.3f}, recall {p.recall:.3f}, "
                f"{p.support} labelled" + (f"; {p.why}" if p.why else "")
            )
    return "\n".join(lines) + "\n"
