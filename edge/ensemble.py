"""Members blended into one set of probabilities over a common taxonomy keyed by scientific name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.manifest import find
from edge.member import Member, MemberOptions
from edge.types import Label, Scores, Window
from edge.windower import WindowSpec


@dataclass(frozen=True)
class Taxonomy:
    """The union of the members' labels (first member's names win), and where each member's classes land."""

    labels: tuple[Label, ...]
    columns: tuple[np.ndarray, ...]  # per member: taxonomy index of each of its outputs

    @classmethod
    def of(cls, members: list[Member]) -> Taxonomy:
        index: dict[str, int] = {}
        labels: list[Label] = []
        columns = []
        for member in members:
            cols = []
            for label in member.labels:
                if label.scientific_name not in index:
                    index[label.scientific_name] = len(labels)
                    labels.append(label)
                cols.append(index[label.scientific_name])
            columns.append(np.array(cols, dtype=np.int64))
        return cls(labels=tuple(labels), columns=tuple(columns))


class Ensemble:
    """Weighted mean of the members' probabilities; a class known to some members only is scored by those."""

    def __init__(self, members: list[Member], weights: list[float] | None = None):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = members
        self.weights = np.asarray(weights or [1.0] * len(members), dtype=np.float64)
        self.taxonomy = Taxonomy.of(members)
        self._coverage = np.zeros(len(self.taxonomy.labels))
        for weight, cols in zip(self.weights, self.taxonomy.columns):
            np.add.at(self._coverage, cols, weight)
        self.name = "+".join(m.manifest.name for m in members)
        self.version = "+".join(m.manifest.version for m in members)

    @property
    def sample_rates(self) -> tuple[int, ...]:
        return tuple(sorted({m.sample_rate for m in self.members}))

    def score(self, windows: list[Window]) -> list[Scores]:
        """Blended scores of each window, in order."""
        per_member = [member.score(windows) for member in self.members]
        results = []
        for i, window in enumerate(windows):
            if len(self.members) == 1:
                blended = per_member[0][i]
            else:
                total = np.zeros(len(self.taxonomy.labels))
                for scores, weight, cols in zip(per_member, self.weights, self.taxonomy.columns):
                    np.add.at(total, cols, weight * scores[i])
                blended = (total / self._coverage).astype(np.float32)
            results.append(Scores(window=window, probabilities=blended, labels=self.taxonomy.labels,
                                  model=self.name, model_version=self.version))
        return results


def load_ensemble(models_dir: Path, names: list[str], window: WindowSpec, options: MemberOptions) -> Ensemble:
    members = [Member(find(models_dir, name), options) for name in names]
    for member in members:
        slack = window.seconds - member.manifest.input_seconds
        if slack > 0 and options.crop_stride > slack + 1e-9:
            raise ValueError(
                f"crop stride {options.crop_stride} s would leave part of each {window.seconds} s window "
                f"unscored by {member.manifest.name} ({member.manifest.input_seconds:g} s input): "
                f"use at most {slack:g} s"
            )
    return Ensemble(members)
