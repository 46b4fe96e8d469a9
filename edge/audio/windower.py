"""Rolling buffer that cuts a stream into overlapping analysis windows, at every rate the models need."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.audio.resample import Converter, rate_converter
from edge.types import AudioChunk, Stream, Window


@dataclass(frozen=True)
class WindowSpec:
    """Windows of `seconds` every `hop` seconds. At the end of a stream a partial window is analysed
    (zero-padded) when it holds at least `min_tail` seconds (default: half a window), and a stream shorter
    than that still gets one padded window: no recording is skipped for being short."""

    seconds: float = 5.0
    hop: float = 2.5
    min_tail: float | None = None

    def __post_init__(self):
        if self.seconds <= 0 or self.hop <= 0:
            raise ValueError("window length and hop must be positive")
        if self.hop > self.seconds:
            raise ValueError(f"hop ({self.hop} s) longer than the window ({self.seconds} s) would leave gaps")

    @property
    def tail_seconds(self) -> float:
        return self.seconds / 2 if self.min_tail is None else self.min_tail

    def start(self, index: int, rate: int) -> int:
        return round(index * self.hop * rate)

    def length(self, rate: int) -> int:
        return round(self.seconds * rate)


@dataclass
class _RateBuffer:
    converter: Converter
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    offset: int = 0  # position of samples[0] on this rate's clock

    @property
    def end(self) -> int:
        return self.offset + len(self.samples)

    def take(self, start: int, length: int) -> np.ndarray:
        part = self.samples[start - self.offset : start - self.offset + length]
        if len(part) < length:
            part = np.concatenate([part, np.zeros(length - len(part), np.float32)])
        return part

    def drop_before(self, start: int) -> None:
        if start > self.offset:
            self.samples = self.samples[start - self.offset :]
            self.offset = start


class Windower:
    """Turns chunks into windows. Pure: no I/O, no threads; chunk sizes do not change the windows. Streams at
    another rate than a model's are converted by `resampler` (one of edge.audio.resample.RESAMPLERS)."""

    def __init__(self, spec: WindowSpec, rates: tuple[int, ...], resampler: str = "kaiser_fast"):
        self.spec = spec
        self.resampler = resampler
        self.rates = tuple(sorted(set(rates)))
        self._stream: Stream | None = None
        self._buffers: dict[int, _RateBuffer] = {}
        self._next = 0
        self._received = 0
        self._skip = 0

    def push(self, chunk: AudioChunk) -> list[Window]:
        if chunk.stream != self._stream:
            self._begin(chunk.stream, chunk.start)
        samples = chunk.samples[self._skip :]
        self._skip -= len(chunk.samples) - len(samples)
        for buffer in self._buffers.values():
            converted = buffer.converter.push(samples, last=chunk.last)
            buffer.samples = np.concatenate([buffer.samples, converted])
        self._received += len(chunk.samples)
        windows: list[Window] = []
        while self._complete(self._next):
            windows.append(self._cut(self._next))
        if chunk.last:
            windows += self._tail()
            self._stream = None
        for rate, buffer in self._buffers.items():
            buffer.drop_before(self.spec.start(self._next, rate))
        return windows

    def _begin(self, stream: Stream, start: int) -> None:
        """A stream taken up `start` samples in (a run that stopped inside a stream of joined files resumes at
        its next file) begins at the first window of the stream's grid that starts there or later."""
        rate = stream.sample_rate
        first = int(start // (self.spec.hop * rate))
        while self.spec.start(first, rate) < start:
            first += 1
        self._stream = stream
        self._buffers = {
            r: _RateBuffer(rate_converter(rate, r, self.resampler), offset=self.spec.start(first, r))
            for r in self.rates
        }
        self._next = first
        self._received = start
        self._skip = self.spec.start(first, rate) - start  # samples before that window's start

    def _complete(self, index: int) -> bool:
        return all(
            buffer.end >= self.spec.start(index, rate) + self.spec.length(rate)
            for rate, buffer in self._buffers.items()
        )

    def _tail(self) -> list[Window]:
        assert self._stream is not None  # called by push, inside a stream
        rate = self._stream.sample_rate
        min_tail = self.spec.tail_seconds * rate
        windows: list[Window] = []
        while self._next == 0 or self._received - self.spec.start(self._next, rate) >= min_tail:
            windows.append(self._cut(self._next))
        return windows

    def _cut(self, index: int) -> Window:
        stream = self._stream
        assert stream is not None  # called by push, inside a stream
        starts = {rate: self.spec.start(index, rate) for rate in self.rates}
        audio = {rate: buf.take(starts[rate], self.spec.length(rate)) for rate, buf in self._buffers.items()}
        start = self.spec.start(index, stream.sample_rate)
        self._next = index + 1
        return Window(
            stream=stream,
            index=index,
            start=start,
            end=start + self.spec.length(stream.sample_rate),
            audio=audio,
            offset=starts,
        )
