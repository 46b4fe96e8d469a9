"""The values that flow through the pipeline, and the contracts of its plug-ins.

Source ─AudioChunk─▶ Windower ─Window─▶ Ensemble ─Scores─▶ Screen ─Screened─▶ Smoother ─Event─▶ Sinks
                                                                  └─Alert─▶ Sinks   (replay: Detector ─Detection─▶)

Time inside the pipeline is counted in samples on the audio clock of each stream; wall-clock UTC is known only
through `Stream.started_utc`, stamped once by the source.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar, final

import numpy as np


def iso_ms(moment: datetime) -> str:
    """`moment` in ISO 8601 to the millisecond, the one time format of every record and store
    (2019-05-22T10:00:07.500+00:00 for a UTC time)."""
    return moment.isoformat(timespec="milliseconds")


def utc_now() -> str:
    """The wall-clock time now, in UTC, as `iso_ms` writes it."""
    return iso_ms(datetime.now(UTC))


@dataclass(frozen=True)
class Stream:
    """One continuous recording: a file, a recorder's consecutive files (named by the first), or a microphone
    session.

    `sample_rate` is the rate the source delivers (the file's own); `started_utc` is the UTC time of its first
    sample when known (file name, WAV header, stream clock), else None. `instance` tells apart streams that
    share an id (a recorder that reuses a file name): for a file, its size and modification time.
    """

    id: str
    sample_rate: int
    started_utc: datetime | None = None
    instance: str = ""

    def utc_at(self, sample: int) -> datetime | None:
        if self.started_utc is None:
            return None
        return self.started_utc + timedelta(seconds=sample / self.sample_rate)


@dataclass(frozen=True)
class AudioChunk:
    """Mono float32 samples of `stream` at its sample rate, the first one `start` samples into the stream.

    `last` marks the end of the stream: no chunk of it follows. `received` is when its last sample reached the
    box (time.monotonic()) for live input, None for files: the start of the latency clock.
    """

    stream: Stream
    start: int
    samples: np.ndarray
    last: bool = False
    received: float | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.samples)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.stream.sample_rate


class StreamSpan:
    """Samples [start, end) of `stream`, also in seconds from the start of the stream."""

    stream: Stream
    start: int
    end: int

    @property
    def start_seconds(self) -> float:
        return self.start / self.stream.sample_rate

    @property
    def end_seconds(self) -> float:
        return self.end / self.stream.sample_rate


@dataclass(frozen=True)
class Window(StreamSpan):
    """The `index`-th analysis window of a stream: samples [start, end) on the stream's clock.

    `audio` holds the window's samples at every rate a model needs (rate -> float32 array of
    window_seconds * rate samples, zero-padded past the end of the stream). `offset` is where the window
    starts on the clock of each rate, so that crops can be placed on a grid in absolute stream time.
    """

    stream: Stream
    index: int
    start: int
    end: int
    audio: Mapping[int, np.ndarray]
    offset: Mapping[int, int]


@dataclass(frozen=True)
class Label:
    """One class of the common taxonomy, keyed by scientific name."""

    scientific_name: str
    common_name: str
    label: str
    species: bool | None = None  # False for classes such as "Engine" or "Dog"; None: as the names suggest

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a user may give it in a configuration: scientific, common (translated when the common
        names are), the model's label, and the label's own common name ("Sci name_Common name")."""
        return (self.scientific_name, self.common_name, self.label, self.label.partition("_")[2] or self.label)


def index_by_name(labels: tuple[Label, ...]) -> dict[str, int]:
    """Casefolded names (Label.names) to the index of the first label carrying them."""
    index: dict[str, int] = {}
    for i, label in enumerate(labels):
        for name in label.names:
            index.setdefault(name.casefold(), i)
    return index


@final
@dataclass(frozen=True)
class Call:
    """One call a call detector (BatDetect2) found in `stream`: `start_s` and `end_s` on the stream's clock, its
    lowest, highest and peak frequency (Hz), the detector's `score` (0..1), and the `label` it most likely is,
    at `probability` (0..1)."""

    stream: Stream
    start_s: float
    end_s: float
    low_freq: float
    high_freq: float
    peak_freq: float
    score: float
    label: Label
    probability: float
    model: str
    model_version: str


@dataclass(frozen=True)
class Scores:
    """Blended probabilities (0..1) of every class in `labels` for one window; `calls`, the calls a call
    detector found for it (those of its chunks no earlier window held)."""

    window: Window
    probabilities: np.ndarray
    labels: tuple[Label, ...]
    model: str
    model_version: str
    calls: tuple[Call, ...] = ()


@final
@dataclass(frozen=True)
class Detection:
    """One class reported for one window, with the confidence (0..1) it was reported at."""

    window: Window
    label: Label
    confidence: float
    model: str
    model_version: str


@final
@dataclass(frozen=True)
class Event(StreamSpan):
    """A detection event of one species in one stream, as its lifecycle goes: `kind` is "start" (first
    confident window), "update" (confidence or duration grew) or "end" (quiet for long enough). The three share
    `id`. [start, end) are samples on the stream's clock; `confidence` (0..1) is the highest reached so far."""

    id: str
    kind: str
    stream: Stream
    label: Label
    start: int
    end: int
    confidence: float
    model: str
    model_version: str
    clip: str | None = None  # the event's audio clip, relative to the clip folder, once written
    # A bat pass: the calls of its species a call detector found in it, and their median peak frequency (Hz).
    calls: int = 0
    peak_freq: float | None = None


@dataclass(frozen=True)
class Alert:
    """A threat class (`alert_class`, as configured) heard in one window, reported from that window alone: its
    `confidence` (0..1) reached `threshold`. `held_back` counts the windows of the class over threshold that the
    alert interval kept quiet since the class's previous alert. `id` is the same on every analysis of the
    same audio."""

    id: str
    alert_class: str
    window: Window
    label: Label
    confidence: float
    threshold: float
    held_back: int
    model: str
    model_version: str


@final
@dataclass(frozen=True)
class ClipSettled:
    """The clip of an event or an alert (`alert_class` set), settled: written (`path`, below the clip folder),
    or refused by the privacy gate (`refused`: "speech"), or not made (both None: no audio, a full card).
    `subject` is the event, or the alert's window as an event of its class."""

    subject: Event
    path: str | None
    refused: str | None = None
    alert_class: str | None = None


@dataclass(frozen=True)
class Screened:
    """One window's scores after screening: the alerts they raised, and the scores events may be made of."""

    alerts: tuple[Alert, ...]
    scores: Scores


class Source(Protocol):
    def chunks(self) -> Iterator[AudioChunk]:
        """Yield chunks of one stream after another, each stream ending with a chunk marked `last`.

        A stream that cannot be read is logged and skipped; it never ends the iteration.
        """


class LiveSource(Protocol):
    """A source of the daemon: it runs until told to stop, and owns whatever thread feeds it. `live` sources
    deliver audio in real time and cannot wait for the analysis (a microphone); the others (files) can."""

    @property
    def live(self) -> bool: ...

    def start(self) -> None:
        """Start feeding (open the device, start watching the folder); constructors start nothing."""

    def chunks(self, stop: threading.Event) -> Generator[AudioChunk | None, None, None]:
        """Yield chunks as `Source.chunks` does, and None whenever nothing new arrived for about a second,
        so that the loop keeps its watchdog and health record going while the box is quiet. Closing the
        generator gives up the stream in flight (taken up again by the next run).

        A stream counts as processed once the consumer asks for the item after its `last` chunk. When `stop`
        is set, the iterator ends soon: a stream cut short then has no `last` chunk, and is taken up again
        (from its start) by the next run when the source can do so.
        """

    def stats(self) -> Mapping[str, int | float]:
        """Counters for the health record (queue depth, overflows, files quarantined...), by name."""

    def stop(self) -> None:
        """Stop and join the feeding threads; idempotent."""


EventRecord = TypeVar("EventRecord", Event, Detection)


class EventStage(Protocol[EventRecord]):
    """Scores in, records out: the smoother's events (daemon) or the detector's per-window detections
    (replay)."""

    def update(self, scores: Scores) -> list[EventRecord]:
        """The records one window's scores complete (events, or detections), in order."""

    def close(self) -> list[EventRecord]:
        """The records still open when their stream ends (its events' ends)."""


class Sink(Protocol):
    def emit(self, detection: Detection) -> None:
        """Take one detection; it must be durable or handed on once `close` returns."""

    def close(self) -> None:
        """Flush and release everything; called once at the end of a run."""
