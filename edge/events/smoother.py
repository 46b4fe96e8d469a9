"""Window scores in, detection events out: temporal smoothing, hysteresis and an event lifecycle per species.

Stages, each optional:
* neighbours: a window's score plus `neighbours` x the score of each neighbour, over 1 + 2 x neighbours (the
  post-processing of the best BirdCLEF solutions); it waits for the next window, so it delays by one hop.
* ema: exponential moving average, `ema` being the weight of the past.
* hysteresis: an event starts when the smoothed score reaches `on` (for `min_duration` seconds, or at once
  when a single raw window reaches `instant`: a lone call from a rare owl must be reportable), goes on while
  windows stay at or above `off`, and ends after `end_after` seconds without one. After an end, the species
  cannot start anew for `cooldown` seconds (0, the default, allows it at once); windows it would have started
  with are counted in `suppressed`.

Pure: no I/O, no clock. Times are window positions in samples on the stream's clock.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edge.types import Call, Event, Scores, Stream

EVENT_NAMESPACE = uuid.UUID("6c1f3f1e-2d4b-4f51-9d0e-5b8f3a1f7e21")


@dataclass(frozen=True)
class SmootherOptions:
    neighbours: float = 0.5
    ema: float = 0.0
    on: float = 0.5
    off: float = 0.35
    instant: float = 0.8
    min_duration: float = 0.0
    end_after: float = 10.0
    cooldown: float = 0.0
    update_delta: float = 0.05
    update_every: float = 60.0

    def __post_init__(self):
        if not 0.0 <= self.off <= self.on <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= off <= on <= 1")
        if not 0.0 <= self.ema < 1.0 or self.neighbours < 0:
            raise ValueError("ema must be in [0, 1) and neighbours >= 0")


@dataclass
class _Track:
    """An open or cooling-down event of one species."""

    id: str
    index: int  # taxonomy index
    start: int
    end: int
    confidence: float
    last_confident: int  # end sample of the last window at or above `off`
    reported_end: int
    reported_confidence: float
    started: bool = False
    closed_at: int | None = None  # sample at which it ended (cooling down), None while open
    calls: dict[float, float] = field(default_factory=dict)  # a call detector's calls in it: start s -> peak Hz


@dataclass
class _StreamState:
    stream: Stream
    pending: deque = field(default_factory=lambda: deque(maxlen=2))  # Scores awaiting their next neighbour
    previous: np.ndarray | None = None  # raw scores of the window before the pending one
    ema: np.ndarray | None = None
    last: Scores | None = None  # the last window judged
    tracks: dict[int, _Track] = field(default_factory=dict)
    recent: list[Call] = field(default_factory=list)  # the calls of the windows judged lately


class Smoother:
    """`thresholds` (optional, per class of the taxonomy, NaN for the default) replaces `on` for a class: a
    species with its own threshold also keeps going at min(off, its threshold) and starts at once only from
    max(instant, its threshold)."""

    def __init__(self, options: SmootherOptions = SmootherOptions(), thresholds: np.ndarray | None = None):
        self.options = options
        self.thresholds = thresholds
        self._state: _StreamState | None = None
        self.suppressed = 0

    @property
    def _current(self) -> _StreamState:
        """The stream being judged: update() opens it before any window is judged, close() ends it."""
        if self._state is None:
            raise RuntimeError("no stream under way: update() opens one before judging a window")
        return self._state

    def reconfigure(self, options: SmootherOptions, thresholds: np.ndarray | None) -> None:
        """After a reload: new options and thresholds, from the next window on; events under way go on."""
        self.options, self.thresholds = options, thresholds

    def _limits(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """on, off and instant of each of `n` classes."""
        o = self.options
        on = np.full(n, o.on, dtype=np.float32)
        if self.thresholds is not None:
            on = np.where(np.isnan(self.thresholds), on, self.thresholds).astype(np.float32)
        return on, np.minimum(on, o.off), np.maximum(on, o.instant)

    def update(self, scores: Scores) -> list:
        """Events caused by one more window of scores (of the current stream, or of a new one)."""
        events = []
        if self._state is None or scores.window.stream != self._state.stream:
            events += self.close()
            self._state = _StreamState(stream=scores.window.stream)
        state = self._state
        if self.options.neighbours == 0:
            return events + self._judge(scores, scores.probabilities)
        state.pending.append(scores)
        if len(state.pending) == 2:
            events += self._judge_pending(following=state.pending[1].probabilities)
        return events

    def close(self) -> list:
        """End of the stream: judge the last window and end every open event."""
        state = self._state
        if state is None:
            return []
        events = []
        if self.options.neighbours and state.pending:
            events += self._judge_pending(following=None)
        for track in list(state.tracks.values()):
            if track.closed_at is None and track.started:
                assert state.last is not None  # a started track was judged in a window
                events.append(self._event("end", track, state.last))
        self._state = None
        return events

    def _judge_pending(self, following: np.ndarray | None) -> list:
        state = self._current
        current = state.pending.popleft()
        raw = current.probabilities
        weight = self.options.neighbours
        total = raw.astype(np.float64).copy()
        norm = 1.0
        for neighbour in (state.previous, following):
            if neighbour is not None:
                total += weight * neighbour
                norm += weight
        state.previous = raw
        return self._judge(current, (total / norm).astype(np.float32))

    def _judge(self, scores: Scores, smoothed: np.ndarray) -> list:
        state = self._current
        state.last = scores
        o = self.options
        if o.ema:
            state.ema = smoothed if state.ema is None else o.ema * state.ema + (1 - o.ema) * smoothed
            smoothed = state.ema
        window = scores.window
        raw = scores.probabilities
        events = []
        on, off, instant = self._limits(len(raw))
        candidates = set(np.flatnonzero((smoothed >= off) | (raw >= instant)).tolist()) | set(state.tracks)
        self._keep_calls(scores)
        for i in sorted(candidates):
            limits = (float(on[i]), float(off[i]), float(instant[i]))
            events += self._step(i, float(raw[i]), float(smoothed[i]), scores, limits)
        rate = window.stream.sample_rate
        for i, track in list(state.tracks.items()):
            if track.closed_at is not None and window.start - track.closed_at >= o.cooldown * rate:
                del state.tracks[i]
        return events

    def _keep_calls(self, scores: Scores) -> None:
        """A call detector's calls come with the first window that holds them; they are kept while a window
        still may (a window's length back), for the events of their species that reach them."""
        state = self._current
        window = scores.window
        horizon = (2 * window.start - window.end) / window.stream.sample_rate
        state.recent = [call for call in [*state.recent, *scores.calls] if call.end_s >= horizon]

    def _count_calls(self, track: _Track, scores: Scores) -> None:
        """The track's calls: those of its species that start inside it."""
        rate = scores.window.stream.sample_rate
        species = scores.labels[track.index].scientific_name
        for call in self._current.recent:
            if call.label.scientific_name == species and track.start / rate <= call.start_s < track.end / rate:
                track.calls[call.start_s] = call.peak_freq

    def _step(self, i: int, raw: float, smoothed: float, scores: Scores, limits: tuple[float, float, float]) -> list:
        o = self.options
        on, off, instant = limits
        state = self._current
        window = scores.window
        rate = window.stream.sample_rate
        confident = smoothed >= off or raw >= instant
        track = state.tracks.get(i)
        if track is not None and track.closed_at is not None:  # cooling down
            self.suppressed += smoothed >= on or raw >= instant
            return []
        if track is None:
            if not (smoothed >= on or raw >= instant):
                return []
            stream = window.stream
            key = f"{stream.id}|{stream.instance}|{scores.labels[i].scientific_name}|{window.start}"
            track = _Track(
                id=str(uuid.uuid5(EVENT_NAMESPACE, key)),
                index=i,
                start=window.start,
                end=window.end,
                confidence=max(raw, smoothed),
                last_confident=window.end,
                reported_end=window.end,
                reported_confidence=0.0,
            )
            state.tracks[i] = track
        if confident:
            track.end = window.end
            track.last_confident = window.end
            track.confidence = max(track.confidence, raw if raw >= instant else smoothed)
            self._count_calls(track, scores)
        events = []
        if not track.started:
            long_enough = track.end - track.start >= o.min_duration * rate
            if long_enough or raw >= instant:
                track.started = True
                track.reported_end, track.reported_confidence = track.end, track.confidence
                events.append(self._event("start", track, scores))
            elif not confident:
                del state.tracks[i]
            return events
        if window.end - track.last_confident >= o.end_after * rate:
            track.closed_at = window.start
            events.append(self._event("end", track, scores))
        elif (
            track.confidence - track.reported_confidence >= o.update_delta
            or track.end - track.reported_end >= o.update_every * rate
        ):
            track.reported_end, track.reported_confidence = track.end, track.confidence
            events.append(self._event("update", track, scores))
        return events

    def _event(self, kind: str, track: _Track, scores: Scores) -> Event:
        return Event(
            id=track.id,
            kind=kind,
            stream=self._current.stream,
            label=scores.labels[track.index],
            start=track.start,
            end=track.end,
            confidence=track.confidence,
            model=scores.model,
            model_version=scores.model_version,
            calls=len(track.calls),
            peak_freq=float(np.median(list(track.calls.values()))) if track.calls else None,
        )
