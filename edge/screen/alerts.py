"""Threat alerts: a gunshot or a chainsaw is reported from the window that heard it, not after smoothing.

Rangers act on an alert within minutes, so an alert class (a configured label such as "Gun" or "Power tools",
matched by scientific name, common name or label) fires as soon as one window's raw score reaches the class's
own threshold. Each class is then quiet for `min_interval` seconds of audio, so a logging crew running a saw
all afternoon sends one alert per interval rather than one per window; the windows held back are counted and
reported with the next alert and in the health record.

The interval runs on the audio clock (seconds of audio analysed, across streams): a replay of an archive
alerts exactly as the box did live, and a burst of files from a recorder is not squeezed into one interval.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

import structlog

from edge.types import Alert, Label, Scores, Stream, index_by_name
from edge.wire.records import iso

log = structlog.get_logger(__name__)

ALERT_NAMESPACE = uuid.UUID("0b6a8f53-3f0e-4c1d-9a55-8d0f4d6c2e71")


@dataclass(frozen=True)
class AlertClass:
    name: str
    threshold: float


@dataclass(frozen=True)
class AlertOptions:
    classes: tuple[AlertClass, ...] = ()
    min_interval: float = 60.0


@dataclass
class _ClassState:
    index: int
    threshold: float
    last_at: float | None = None  # audio clock of the last alert sent
    sent: int = 0
    held_back: int = 0  # windows over threshold inside the interval since the last alert
    held_back_total: int = 0
    max_confidence: float = 0.0
    last_utc: str | None = None


@dataclass
class _Clock:
    """Seconds of audio before the current stream began, plus the position in it."""

    stream: Stream | None = None
    base: float = 0.0
    reached: float = 0.0  # end of the furthest window seen in the current stream, seconds

    def at(self, stream: Stream, end_seconds: float) -> float:
        if stream != self.stream:
            self.base += self.reached
            self.stream, self.reached = stream, 0.0
        self.reached = max(self.reached, end_seconds)
        return self.base + end_seconds


@dataclass
class AlertGate:
    """Turns window scores into alerts for the classes configured; `unknown` lists configured classes that no
    running model knows (logged once at start: a typo must not silence an alert)."""

    options: AlertOptions
    labels: tuple[Label, ...]
    states: dict[str, _ClassState] = field(init=False)
    unknown: tuple[str, ...] = field(init=False)
    _clock: _Clock = field(init=False, default_factory=_Clock)

    def __post_init__(self):
        index = index_by_name(self.labels)
        self.states = {
            c.name: _ClassState(index[c.name.casefold()], c.threshold)
            for c in self.options.classes
            if c.name.casefold() in index
        }
        self.unknown = tuple(c.name for c in self.options.classes if c.name.casefold() not in index)
        if self.unknown:
            log.error(
                "alert_class_unknown",
                classes=list(self.unknown),
                hint="alert classes are matched by scientific name, common name or label of the models",
            )

    @property
    def indices(self) -> frozenset[int]:
        return frozenset(s.index for s in self.states.values())

    def check(self, scores: Scores) -> list[Alert]:
        """The alerts of one window, at most one per class and interval."""
        window = scores.window
        now = self._clock.at(window.stream, window.end_seconds)
        alerts = []
        for name, state in self.states.items():
            confidence = float(scores.probabilities[state.index])
            if confidence < state.threshold:
                continue
            state.max_confidence = max(state.max_confidence, confidence)
            if state.last_at is not None and now - state.last_at < self.options.min_interval:
                state.held_back += 1
                state.held_back_total += 1
                continue
            label = scores.labels[state.index]
            stream = window.stream
            key = f"{stream.id}|{stream.instance}|{label.scientific_name}|{window.start}"
            alerts.append(
                Alert(
                    id=str(uuid.uuid5(ALERT_NAMESPACE, key)),
                    alert_class=name,
                    window=window,
                    label=label,
                    confidence=confidence,
                    threshold=state.threshold,
                    held_back=state.held_back,
                    model=scores.model,
                    model_version=scores.model_version,
                )
            )
            state.last_at, state.held_back = now, 0
            state.sent += 1
            state.last_utc = iso(stream.utc_at(window.start))
        return alerts

    def carry_over(self, previous: AlertGate) -> None:
        """After a reload: a class kept keeps its interval and counts, so a SIGHUP does not re-alert."""
        self._clock = previous._clock
        for name, state in self.states.items():
            old = previous.states.get(name)
            if old is not None:
                self.states[name] = replace(old, index=state.index, threshold=state.threshold)

    def stats(self) -> dict[str, dict]:
        """Per class since start: alerts sent, windows held back by the interval, highest confidence, when."""
        return {
            name: {
                "sent": s.sent,
                "held_back": s.held_back_total,
                "max_confidence": round(s.max_confidence, 4),
                "last_utc": s.last_utc,
            }
            for name, s in self.states.items()
        }
