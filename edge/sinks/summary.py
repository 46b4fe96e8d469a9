"""What a replay found, per species: a sink that counts."""

from __future__ import annotations

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
