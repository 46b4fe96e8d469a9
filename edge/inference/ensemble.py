"""Members blended into one set of probabilities over a common taxonomy keyed by scientific name."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import cast, get_args

import numpy as np
import structlog

from edge.audio.windower import WindowSpec
from edge.inference.call_member import CallMember
from edge.inference.frontend import SharedFrontEnd, front_end_key
from edge.inference.manifest import find
from edge.inference.member import Member, MemberOptions
from edge.inference.schedule import Active, Schedule
from edge.inference.stages import Stages
from edge.types import Label, Scores, Stream, Window

log = structlog.get_logger(__name__)

AnyMember = Member | CallMember

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class MemberSpec:
    """A member as the configuration declares it: the model's name, its `weight` in the blend, its
    `priority` (under a CPU budget, members of lower priority are shed first), its time-shift TTA
    `shifts` in seconds (e.g. (-0.5, 0.5): three variants with the unshifted one) and when it is `active`:
    always, or only by day or by night at the box's place."""

    name: str
    weight: float = 1.0
    priority: int = 0
    shifts: tuple[float, ...] = ()
    active: Active = "always"

    @classmethod
    def parse(cls, text: str) -> MemberSpec:
        """A member as a command line names it: `name`, or `name@day` / `name@night` for one active by day
        or by night only."""
        name, at, when = text.partition("@")
        if not at:
            return cls(name)
        if when not in get_args(Active):
            raise ValueError(f"{text}: a model runs @day, @night or @always, not @{when}")
        return cls(name, active=cast(Active, when))


@dataclass(frozen=True)
class Taxonomy:
    """The union of the members' labels (first member's names win), and where each member's classes land."""

    labels: tuple[Label, ...]
    columns: tuple[np.ndarray, ...]  # per member: taxonomy index of each of its outputs

    @classmethod
    def of(cls, members: list[AnyMember]) -> Taxonomy:
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
    """Weighted mean of the members' probabilities (never of ranks: thresholds and smoothing are tuned on
    probabilities). A class known to some members only is scored by those; a class no running member knows
    scores 0.

    `score` may run a subset of the members (`active`, by index) and skip TTA: the CPU budget guard's levers.
    Of those, it runs only the members the `schedule` lets run at the time of the batch's first window
    (`held_off` holds the ones it kept from the last batch), and of those only the members that can hear the
    stream: a model that declares a lowest source rate never runs on a stream recorded below it (a bat
    detector on a 48 kHz microphone), and says so once per stream.
    """

    def __init__(
        self,
        members: list[AnyMember],
        weights: list[float] | None = None,
        priorities: list[int] | None = None,
        stages: Stages | None = None,
        schedule: Schedule | None = None,
    ):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = members
        self.weights = np.asarray(weights or [1.0] * len(members), dtype=np.float64)
        self.priorities = tuple(priorities or [0] * len(members))
        self.stages = stages or Stages()
        self.taxonomy = Taxonomy.of(members)
        self.schedule = schedule or Schedule([m.name for m in members], ["always"] * len(members), None)
        self.held_off: frozenset[int] = frozenset()
        self._time_unknown_logged = False
        self._coverage: dict[frozenset[int], np.ndarray] = {}
        self._rates_told: Stream | None = None
        self.name = "+".join(m.manifest.name for m in members)
        self.version = "+".join(m.manifest.version for m in members)

    @property
    def sample_rates(self) -> tuple[int, ...]:
        return tuple(sorted({m.sample_rate for m in self.members}))

    @property
    def has_tta(self) -> bool:
        return any(m.shifts for m in self.members)

    def score(self, windows: list[Window], active: Collection[int] | None = None, tta: bool = True) -> list[Scores]:
        """Blended scores of each window, in order."""
        if not windows:
            return []
        running = self._scheduled(windows, sorted(range(len(self.members)) if active is None else active))
        running = self.heard(windows[0].stream, running)
        try:
            per_member = {i: self.members[i].score(windows, tta=tta) for i in running}
        finally:
            for member in self.members:
                member.front_end.clear()
        with self.stages.measure("blend", items=len(windows)):
            blended = self._blend(per_member, len(windows))
        name = "+".join(self.members[i].name for i in running)
        detectors = [m for i in running if isinstance(m := self.members[i], CallMember)]
        return [
            Scores(
                window=window,
                probabilities=p,
                labels=self.taxonomy.labels,
                model=name,
                model_version=self.version,
                calls=tuple(call for m in detectors for call in m.fresh[k]),
            )
            for k, (window, p) in enumerate(zip(windows, blended, strict=True))
        ]

    def heard(self, stream: Stream, running: list[int]) -> list[int]:
        """The members of `running` whose models can hear a stream recorded at its rate."""
        kept = [i for i in running if (self.members[i].manifest.min_source_rate or 0) <= stream.sample_rate]
        if len(kept) < len(running) and self._rates_told != stream:
            self._rates_told = stream
            for i in sorted(set(running) - set(kept)):
                manifest = self.members[i].manifest
                log.info(
                    "member_not_run_at_this_rate",
                    member=manifest.name,
                    stream=stream.id,
                    sample_rate=stream.sample_rate,
                    needs=manifest.min_source_rate,
                )
        return kept

    def _scheduled(self, windows: list[Window], running: list[int]) -> list[int]:
        """`running` less the members the schedule holds off at the first window's start (a batch is one
        chunk's windows); all of `running` when the stream's time is unknown."""
        if not self.schedule.scheduled:
            return running
        first = windows[0]
        moment = first.stream.utc_at(first.start)
        if moment is None:
            if not self._time_unknown_logged:
                self._time_unknown_logged = True
                log.warning("schedule_time_unknown", stream=first.stream.id, running="every member")
            self.held_off = frozenset()
            return running
        self.held_off = self.schedule.held_off(moment)
        return [i for i in running if i not in self.held_off]

    def _blend(self, per_member: dict[int, list[np.ndarray]], n: int) -> list[np.ndarray]:
        if len(self.members) == 1 and per_member:
            return per_member[0]
        coverage = self._coverage_of(frozenset(per_member))
        results = []
        for k in range(n):
            total = np.zeros(len(self.taxonomy.labels))
            for i, scores in per_member.items():
                np.add.at(total, self.taxonomy.columns[i], self.weights[i] * scores[k])
            results.append(np.divide(total, coverage, out=np.zeros_like(total), where=coverage > 0).astype(np.float32))
        return results

    def _coverage_of(self, running: frozenset[int]) -> np.ndarray:
        if running not in self._coverage:
            coverage = np.zeros(len(self.taxonomy.labels))
            for i in running:
                np.add.at(coverage, self.taxonomy.columns[i], self.weights[i])
            self._coverage[running] = coverage
        return self._coverage[running]


def load_ensemble(
    models_dir: Path,
    specs: list[MemberSpec],
    window: WindowSpec,
    options: MemberOptions,
    stages: Stages | None = None,
    place: tuple[float, float] | None = None,
) -> Ensemble:
    """Sessions are built once here, each from a model file whose sha256 is checked as it loads; members that
    declare the same front-end share one. `place` (latitude, longitude) is needed by members active only by
    day or night: ValueError without it."""
    stages = stages or Stages()
    schedule = Schedule([s.name for s in specs], [s.active for s in specs], place)
    front_ends: dict[tuple, SharedFrontEnd] = {}
    members: list[AnyMember] = []
    for spec in specs:
        manifest = find(models_dir, spec.name)
        if manifest.output_kind == "calls":
            if spec.shifts:
                raise ValueError(f"{spec.name}: a call detector places calls itself; it takes no TTA shifts")
            members.append(CallMember(manifest, options, window, stages))
            continue
        slack = window.seconds - manifest.input_seconds
        if slack > 0 and options.crop_stride > slack + 1e-9:
            raise ValueError(
                f"crop stride {options.crop_stride} s would leave part of each {window.seconds} s window "
                f"unscored by {manifest.name} ({manifest.input_seconds:g} s input): use at most {slack:g} s"
            )
        if any(shift == 0 or abs(shift) >= window.seconds for shift in spec.shifts):
            raise ValueError(f"{spec.name}: TTA shifts must be non-zero and shorter than the window")
        key = front_end_key(manifest)
        front_end = front_ends.setdefault(key, SharedFrontEnd(manifest, stages))
        members.append(Member(manifest, options, spec.shifts, front_end, stages))
    return Ensemble(members, [s.weight for s in specs], [s.priority for s in specs], stages, schedule)
