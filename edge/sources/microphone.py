"""The live microphone: a PortAudio input stream whose callback fills a bounded ring buffer, watched by a
supervisor thread that reopens it, with capped exponential back-off, when it errors, finishes, delivers nothing
for `stall_seconds` or only digital zeros for `silence_seconds`.

Each opened stream is a new `Stream`, its `started_utc` the UTC time of its first sample: the stream clock of
the first callback anchored once to the wall clock; after that, time is counted in samples, and blocks dropped
because the buffer was full come out as zeros. sounddevice is imported by `start()`, so that this module
imports on a box without PortAudio.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import ModuleType
from typing import Literal, Protocol

import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.sources.salvage import zero_non_finite
from edge.types import AudioChunk, Stream

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.1  # how often the supervisor looks at the stream, and chunks() at `stop`
IDLE_SECONDS = 1.0  # chunks() yields None after this long without audio
EMPTY = np.zeros(0, np.float32)


class MicrophoneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["microphone"] = "microphone"
    device: str | int | None = Field(
        None, description="PortAudio input device: index, or (part of) its name; default: the system default."
    )
    sample_rate: int = Field(48000, ge=8000, le=384000, description="Sample rate to capture at, Hz.")
    channels: int = Field(1, ge=1, le=64, description="Channels to open the device with.")
    channel: int | None = Field(None, ge=0, description="Channel to analyse (0-based); default: the mix-down.")
    block_seconds: float = Field(0.1, gt=0, le=1, description="Audio handed over per callback, seconds.")
    buffer_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Ring buffer between the callback and the analysis, seconds; "
        "when full, the oldest blocks are dropped (counted, and analysed as zeros).",
    )
    stall_seconds: float = Field(10.0, gt=0, description="Restart a stream that delivers nothing this long, s.")
    silence_seconds: float = Field(
        60.0, gt=0, description="Restart a stream that delivers only digital zeros this long, seconds."
    )
    reopen_min_seconds: float = Field(1.0, gt=0, description="First wait before reopening the device, seconds.")
    reopen_max_seconds: float = Field(60.0, gt=0, description="Longest wait between reopening attempts, s.")

    @model_validator(mode="after")
    def _consistent(self) -> MicrophoneConfig:
        if self.channel is not None and self.channel >= self.channels:
            raise ValueError(f"channel {self.channel} asked for, but the device is opened with {self.channels}")
        if self.reopen_min_seconds > self.reopen_max_seconds:
            raise ValueError("reopen_min_seconds must not exceed reopen_max_seconds")
        if self.buffer_seconds < self.block_seconds:
            raise ValueError("buffer_seconds must hold at least one block")
        return self


class MicrophoneError(Exception):
    """The microphone cannot work on this box at all (no PortAudio)."""


@dataclass(frozen=True)
class _Block:
    """Mono samples of `stream` from sample `start`; `last` ends the stream (then `samples` is empty)."""

    stream: Stream
    start: int
    samples: np.ndarray
    last: bool = False
    received: float | None = None


class InputStream(Protocol):
    """What is used of a sounddevice.InputStream (sounddevice ships no types)."""

    active: bool
    latency: float

    def start(self) -> None: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


class _Session:
    """One opened input stream: its sample clock, its `Stream` (from the first block on), and when it was
    opened or last delivered a block, and a non-zero sample (monotonic seconds)."""

    def __init__(self, device: str, opened: float):
        self.device = device
        self.handle: InputStream | None = None
        self.stream: Stream | None = None
        self.position = 0
        self.last_block = opened
        self.last_sound = opened


def first_sample_utc(time_info, frames: int, sample_rate: int) -> datetime:
    """UTC of a block's first sample: its ADC time on the stream clock, taken back from the stream's current
    time to the wall clock now. That sample is at least the block's duration old, whatever a host API says
    (PulseAudio's ALSA plugin may report less); with no usable ADC time, the block's duration is taken."""
    duration = frames / sample_rate
    age = time_info.currentTime - time_info.inputBufferAdcTime
    if time_info.inputBufferAdcTime <= 0 or not 0 <= age < 10:
        age = duration
    return datetime.now(UTC) - timedelta(seconds=max(age, duration))


class Microphone:
    """A `LiveSource` on a PortAudio input device. Threads: PortAudio's callback and one supervisor."""

    live = True

    def __init__(self, config: MicrophoneConfig):
        self.config = config
        self._sd: ModuleType | None = None  # sounddevice, loaded by start()
        self._queue: deque[_Block] = deque(maxlen=max(1, round(config.buffer_seconds / config.block_seconds)))
        self._queued = 0  # samples in the queue
        self._arrived = threading.Condition()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: _Session | None = None
        self._delay = config.reopen_min_seconds
        self._retry_at = 0.0
        self._captured = 0  # samples delivered by the device
        self._counts = dict.fromkeys(
            (
                "streams",
                "restarts",
                "stall_restarts",
                "silent_restarts",
                "error_restarts",
                "open_failures",
                "input_overflows",
                "dropped_blocks",
                "damaged_samples",
            ),
            0,
        )

    def start(self) -> None:
        """Load PortAudio (MicrophoneError if missing), open the device (a failure is retried), start watching."""
        if self._thread is not None:
            return
        self._sd = load_portaudio()
        self._halt.clear()
        if not self._open():
            self._schedule_retry()
        self._thread = threading.Thread(target=self._supervise, name="microphone", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stats(self) -> Mapping[str, int | float]:
        with self._arrived:
            queued = self._queued
        rate = self.config.sample_rate
        return {
            "queue_seconds": queued / rate,
            "captured_seconds": self._captured / rate,
            "device_open": int(self._session is not None),
            **self._counts,
            "damaged_seconds": round(self._counts["damaged_samples"] / rate, 2),
        }

    def chunks(self, stop: threading.Event) -> Generator[AudioChunk | None, None, None]:
        reassembly = _Reassembly(max_gap=round(self.config.buffer_seconds * self.config.sample_rate))
        while not (stop.is_set() or self._halt.is_set()):
            blocks = self._take(stop)
            if not blocks:
                yield None
                continue
            yield from reassembly.chunks_of(blocks)
        if reassembly.stream is not None:
            yield AudioChunk(reassembly.stream, reassembly.position, EMPTY, last=True)

    def _on_block(self, session: _Session, indata: np.ndarray, frames: int, time_info, status) -> None:
        """PortAudio's thread: no blocking, no logging; the supervisor reads what it records."""
        now = time.monotonic()
        if status.input_overflow:
            self._counts["input_overflows"] += 1
        if session.stream is None:
            started = first_sample_utc(time_info, frames, self.config.sample_rate)
            stream_id = f"mic:{session.device}@{started.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z"
            session.stream = Stream(stream_id, self.config.sample_rate, started)
            session.last_sound = now  # silence is counted from the first block
        channel = self.config.channel
        samples = indata.mean(axis=1, dtype=np.float32) if channel is None else indata[:, channel].copy()
        samples, damaged = zero_non_finite(samples)  # a driver's inf or NaN would poison every score
        self._counts["damaged_samples"] += damaged
        self._enqueue(_Block(session.stream, session.position, samples, received=now))
        session.position += frames
        session.last_block = now
        if samples.any():
            session.last_sound = now
        self._captured += frames

    def _enqueue(self, block: _Block) -> None:
        with self._arrived:
            if len(self._queue) == self._queue.maxlen:
                self._queued -= len(self._queue[0].samples)
                self._counts["dropped_blocks"] += 1
            self._queue.append(block)
            self._queued += len(block.samples)
            self._arrived.notify()

    def _take(self, stop: threading.Event) -> list[_Block]:
        """Everything queued, waiting up to IDLE_SECONDS for something to arrive (less if stopped)."""
        deadline = time.monotonic() + IDLE_SECONDS
        with self._arrived:
            while not self._queue and time.monotonic() < deadline:
                if stop.is_set() or self._halt.is_set():
                    break
                self._arrived.wait(POLL_SECONDS)
            blocks = list(self._queue)
            self._queue.clear()
            self._queued = 0
        return blocks

    def _supervise(self) -> None:
        while not self._halt.wait(POLL_SECONDS):
            session, now = self._session, time.monotonic()
            if session is None:
                if now >= self._retry_at and not self._open():
                    self._schedule_retry()
                continue
            reason = self._trouble(session, now)
            if reason is not None:
                self._counts["restarts"] += 1
                self._counts[f"{reason}_restarts"] += 1
                self._close(reason, retry_in_s=self._delay)
                self._schedule_retry()
            elif session.stream is not None:
                self._delay = self.config.reopen_min_seconds  # the device works: back-off starts over
        self._close("stopped")

    @property
    def _portaudio(self) -> ModuleType:
        if self._sd is None:
            raise MicrophoneError("the microphone is used before start() loaded PortAudio")
        return self._sd

    def _trouble(self, session: _Session, now: float) -> str | None:
        assert session.handle is not None  # a session is kept only once its stream is open
        try:
            active = session.handle.active
        except self._portaudio.PortAudioError:
            active = False
        if not active:
            return "error"  # PortAudio ended the stream: device gone or failing
        if now - session.last_block > self.config.stall_seconds:
            return "stall"
        if session.stream is not None and now - session.last_sound > self.config.silence_seconds:
            return "silent"
        return None

    def _schedule_retry(self) -> None:
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.config.reopen_max_seconds)

    def _open(self) -> bool:
        sd, config, session = self._portaudio, self.config, None
        try:  # PortAudio lists devices only when initialised: a device plugged back in needs a rescan
            rescan(sd)
            session = _Session(sd.query_devices(config.device, "input")["name"], time.monotonic())
            session.handle = handle = sd.InputStream(
                device=config.device,
                samplerate=config.sample_rate,
                channels=config.channels,
                dtype="float32",
                blocksize=round(config.block_seconds * config.sample_rate),
                callback=partial(self._on_block, session),
            )
            handle.start()
        except (sd.PortAudioError, ValueError) as error:
            if session is not None and session.handle is not None:
                session.handle.close()
            self._counts["open_failures"] += 1
            log.warning("microphone_open_failed", device=config.device, error=str(error), retry_in_s=self._delay)
            return False
        self._session = session
        self._counts["streams"] += 1
        log.info(
            "microphone_opened",
            device=session.device,
            sample_rate=config.sample_rate,
            channels=config.channels,
            latency_s=round(handle.latency, 3),
        )
        return True

    def _close(self, reason: str, **context) -> None:
        """Close the stream (after its last callback) and end its `Stream` in the buffer."""
        session, self._session = self._session, None
        if session is None:
            return
        assert session.handle is not None  # a session is kept only once its stream is open
        session.handle.abort()
        session.handle.close()
        stream = session.stream
        if stream is not None:
            self._enqueue(_Block(stream, session.position, EMPTY, last=True))
        level = log.info if reason == "stopped" else log.warning
        level(
            "microphone_closed",
            reason=reason,
            device=session.device,
            stream=stream.id if stream else None,
            seconds=round(session.position / self.config.sample_rate, 1),
            **context,
        )


class _Reassembly:
    """Queued blocks back into chunks of contiguous samples: the gaps left by dropped blocks become zeros (at
    most `max_gap` samples per chunk), and every stream ends with a chunk marked `last`."""

    def __init__(self, max_gap: int):
        self.max_gap = max_gap
        self.received: float | None = None  # arrival of the newest block handed out
        self.stream: Stream | None = None
        self.position = 0  # next sample of `stream` to hand out

    def chunks_of(self, blocks: list[_Block]) -> list[AudioChunk]:
        chunks: list[AudioChunk] = []
        parts: list[np.ndarray] = []
        start = self.position
        self.received = None
        for block in blocks:
            if block.stream != self.stream:
                chunks += self._flush(parts, start)
                parts, start = [], 0
                if self.stream is not None:  # its end marker was dropped with a full buffer
                    chunks.append(AudioChunk(self.stream, self.position, EMPTY, last=True))
                self.stream, self.position = block.stream, 0
            while block.start > self.position:
                gap = min(block.start - self.position, self.max_gap)
                chunks += self._flush(parts, start)
                chunks.append(AudioChunk(self.stream, self.position, np.zeros(gap, np.float32)))
                parts, self.position = [], self.position + gap
                start = self.position
            parts.append(block.samples)
            self.position += len(block.samples)
            self.received = block.received
            if block.last:
                chunks.append(AudioChunk(self.stream, start, np.concatenate(parts), last=True, received=self.received))
                parts, self.stream = [], None
        return chunks + self._flush(parts, start)

    def _flush(self, parts: list[np.ndarray], start: int) -> list[AudioChunk]:
        samples = np.concatenate(parts) if parts else EMPTY
        if not len(samples):
            return []
        assert self.stream is not None  # samples are gathered only once a block has begun a stream
        return [AudioChunk(self.stream, start, samples, received=self.received)]


def load_portaudio() -> ModuleType:
    """The sounddevice module, or MicrophoneError saying what to install."""
    try:
        import sounddevice
    except OSError as error:
        raise MicrophoneError(
            f"the microphone needs the PortAudio library (Debian: apt install libportaudio2): {error}"
        ) from error
    return sounddevice


def rescan(sd: ModuleType) -> None:
    """Re-initialise PortAudio so that its device list is current (the way sounddevice's maintainers give)."""
    if sd._initialized:  # not after a failed initialisation
        sd._terminate()
    sd._initialize()
