"""What a replay found, per species: a sink that counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edge.types import Detection


@dataclass
class SpeciesTally:
    scientific_name: str
    common_name: str
    count: int = 0
    max_confidence: float = 0.0
    sources: set[str] = field(default_factory=set)


class Summary:
    def __init__(self):
        self.species: dict[str, SpeciesTally] = {}
        self.detections = 0

    @classmethod
    def of(cls, tallies: Iterable[SpeciesTally]) -> Summary:
        """The summary the tallies of its species make (as a replay's ledger keeps them)."""
        summary = cls()
        for tally in tallies:
            summary.species[tally.scientific_name] = tally
            summary.detections += tally.count
        return summary

    def emit(self, detection: Detection) -> None:
        label = detection.label
        tally = self.species.setdefault(label.scientific_name, SpeciesTally(label.scientific_name, label.common_name))
        tally.count += 1
        tally.max_confidence = max(tally.max_confidence, detection.confidence)
        tally.sources.add(detection.window.stream.id)
        self.detections += 1

    def close(self) -> None:
        pass

    def ranked(self) -> list[SpeciesTally]:
        return sorted(self.species.values(), key=lambda t: (-t.max_confidence, -t.count, t.scientific_name))
