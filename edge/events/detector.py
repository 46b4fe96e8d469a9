"""Per-window detections: the classes whose probability reaches the minimum confidence, best first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.types import Detection, Scores


@dataclass(frozen=True)
class DetectorOptions:
    min_confidence: float = 0.25
    top_k: int = 10


class Detector:
    """Pure: one Scores in, its detections out."""

    def __init__(self, options: DetectorOptions = DetectorOptions()):
        if not 0.0 <= options.min_confidence <= 1.0:
            raise ValueError("min_confidence must be between 0 and 1")
        if options.top_k < 1:
            raise ValueError("top_k must be at least 1")
        self.options = options

    def update(self, scores: Scores) -> list[Detection]:
        p = scores.probabilities
        k = min(self.options.top_k, len(p))
        best = np.argpartition(-p, k - 1)[:k]
        best = best[np.argsort(-p[best], kind="stable")]
        return [
            Detection(
                window=scores.window,
                label=scores.labels[i],
                confidence=float(p[i]),
                model=scores.model,
                model_version=scores.model_version,
            )
            for i in best
            if p[i] >= self.options.min_confidence
        ]

    def close(self) -> list[Detection]:
        """Nothing is left open at the end of a stream: each window's detections came with it."""
        return []
