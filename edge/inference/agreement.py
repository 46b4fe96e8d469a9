"""How closely a changed model (quantized, pruned, re-converted) follows the reference on the same crops.

A changed model is only worth shipping if a user would see the same detections: the same top species where
the reference is confident, and nearly the same confidences for the species that reach the top of a list.
Both are measured on probabilities as edge reports them (flat_sigmoid of the logits), never on raw logits,
whose large negative tail would dominate any average without changing a single detection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENT = 0.5  # a reference top probability this high is a detection at edge's usual thresholds
TOP_K = 10  # edge reports at most this many classes per window by default
MIN_TOP1 = 0.97
MAX_MAD = 0.02


@dataclass(frozen=True)
class Agreement:
    """`top1`: fraction of the `confident` crops (reference top probability >= CONFIDENT) on which both models
    put the same class first (nan when there are none). `mad`: mean absolute difference of the probabilities
    of the reference's TOP_K classes, averaged over all `crops`. The gate needs evidence: no confident crop,
    no pass."""

    top1: float
    confident: int
    mad: float
    crops: int

    @property
    def passes(self) -> bool:
        return self.confident > 0 and self.top1 >= MIN_TOP1 and self.mad <= MAX_MAD

    def line(self) -> str:
        verdict = "pass" if self.passes else "FAIL"
        return (
            f"top-1 {self.top1:.1%} on {self.confident} confident crops (>= {MIN_TOP1:.0%}), "
            f"top-{TOP_K} MAD {self.mad:.4f} (<= {MAX_MAD}) over {self.crops} crops: {verdict}"
        )

    def __str__(self) -> str:
        return self.line()


def agreement(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    """Compare probabilities [crops, classes] of the reference model and the changed one, crop by crop."""
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise ValueError(f"need two [crops, classes] arrays of one shape, got {reference.shape} and {candidate.shape}")
    confident = reference.max(axis=1) >= CONFIDENT
    same = reference.argmax(axis=1) == candidate.argmax(axis=1)
    n = int(confident.sum())
    top1 = float(same[confident].mean()) if n else math.nan
    k = min(TOP_K, reference.shape[1])
    top = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    gap = np.abs(np.take_along_axis(reference, top, 1) - np.take_along_axis(candidate, top, 1))
    return Agreement(top1=top1, confident=n, mad=float(gap.mean()), crops=len(reference))
