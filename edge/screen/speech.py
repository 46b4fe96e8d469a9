"""Speech detector of the privacy gate: where people talk, speech is counted but audio is never saved.

Silero VAD (models/silero-vad, MIT) gives the probability of speech in every 32 ms frame of 16 kHz audio. A
hysteresis turns frames into speech segments the way silero's own `get_speech_timestamps` does, and the
segments, padded and merged, form a timeline on the stream's clock that the daemon asks "was there speech in
[start, end)?" before it writes a clip. Like the Windower, one stream at a time, pure: no I/O, no threads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.audio.resample import RateConverter
from edge.inference.manifest import ModelError, read_manifest_file, verified
from edge.inference.sessions import make_session
from edge.types import AudioChunk, Stream

# The model's I/O contract (written into speech.toml by tools/models/import_vad.py and checked against it at load).
RATE = 16000  # Hz
FRAME = 512  # new samples per frame: 32 ms
CONTEXT = 64  # samples of the previous frame put in front of each frame (zeros before the first)
STATE = (1, 1, 128)  # shape of each LSTM state tensor, h and c
MODEL_NAME = "silero-vad"  # the folder under the models folder
MANIFEST = "speech.toml"
MAX_FRAMES = 512  # frames per session run (16 s): bounds the input tensor when a source hands over a long chunk


@dataclass(frozen=True)
class SpeechOptions:
    """How frame probabilities become speech segments; durations in seconds.

    threshold, neg_threshold, min_speech and min_silence are silero's `get_speech_timestamps` defaults (0.5,
    threshold - 0.15, 250 ms, 100 ms): speech starts on a frame at or above `threshold` and ends after
    `min_silence` below `neg_threshold`; segments no longer than `min_speech` are dropped, which is what keeps
    single bird notes from counting. `padding` is not silero's 30 ms, meant for cutting speech cleanly: the
    model needs a few frames to rise at an onset and quiet syllables at the edges fall below the threshold,
    and a clip that keeps half a word still records a person, so each segment grows by 0.5 s each side.
    `keep_seconds` is how far back the timeline answers: longer than the longest clip the daemon asks about.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech: float = 0.25
    min_silence: float = 0.1
    padding: float = 0.5
    keep_seconds: float = 120.0

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold {self.threshold} is not between 0 and 1")
        if not 0 < self.negative <= self.threshold:
            raise ValueError(f"neg_threshold {self.negative} is not in (0, threshold]")
        if min(self.min_speech, self.min_silence, self.padding) < 0 or self.keep_seconds <= 0:
            raise ValueError("durations must not be negative, keep_seconds must be positive")

    @property
    def negative(self) -> float:
        return max(self.threshold - 0.15, 0.01) if self.neg_threshold is None else self.neg_threshold


@dataclass(frozen=True)
class SpeechManifest:
    """models/<name>/speech.toml: the file, its checksum, and the I/O contract it was imported with."""

    directory: Path
    name: str
    version: str
    file: str
    sha256: str
    sample_rate: int
    frame: int
    context: int

    @property
    def path(self) -> Path:
        return self.directory / self.file


def read_manifest(directory: Path) -> SpeechManifest:
    path = directory / MANIFEST
    data = read_manifest_file(
        path,
        missing="no speech model manifest (the privacy gate needs the silero-vad "
        "directory in the models folder: run python -m tools.models.import_vad, or set "
        "[privacy] speech_detector = false)",
    )
    try:
        inp = data["input"]
        manifest = SpeechManifest(
            directory,
            data["name"],
            str(data["version"]),
            data["file"],
            data["sha256"],
            int(inp["sample_rate"]),
            int(inp["frame"]),
            int(inp["context"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{path}: invalid manifest: {error!r}") from error
    if (manifest.sample_rate, manifest.frame, manifest.context) != (RATE, FRAME, CONTEXT):
        raise ModelError(
            f"{path}: frames of {manifest.frame}+{manifest.context} samples at "
            f"{manifest.sample_rate} Hz; edge.screen.speech feeds {FRAME}+{CONTEXT} at {RATE} Hz"
        )
    return manifest


class SpeechModel:
    """The speech network: probabilities of a block of consecutive frames of one stream, state in and out."""

    def __init__(self, manifest: SpeechManifest, session: ort.InferenceSession):
        self.manifest = manifest
        self.session = session

    @classmethod
    def load(cls, models_dir: Path, name: str = MODEL_NAME, threads: int = 1) -> SpeechModel:
        """The model in `models_dir`/`name`, its checksum verified; one thread is plenty (under 1 % of a core)."""
        manifest = read_manifest(Path(models_dir) / name)
        model = verified(manifest.path, manifest.sha256, manifest.directory / MANIFEST)
        return cls(manifest, make_session(model, intra_op_threads=threads))

    @staticmethod
    def initial_state() -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(STATE, np.float32), np.zeros(STATE, np.float32)

    def run(self, rows: np.ndarray, state: tuple[np.ndarray, np.ndarray]):
        """Probabilities of `rows` ([frames, CONTEXT + FRAME] float32, in stream order) and the state after them.

        The network is recurrent along the frames, so rows of one call are consecutive frames of one stream,
        never frames of several streams side by side.
        """
        probs, h, c = self.session.run(None, {"input": rows, "h": state[0], "c": state[1]})
        return probs, (h, c)


def union_overlap(segments: Iterable[tuple[int, int]], start: int, end: int) -> int:
    """Samples of [start, end) covered by `segments`, sorted by start, counting overlaps once."""
    covered, reach = 0, start
    for first, last in segments:
        first, last = max(first, reach), min(last, end)
        if last > first:
            covered += last - first
            reach = last
    return covered


class NoSpeech:
    """The speech detector when it is off: hears no speech, counts nothing."""

    def push(self, chunk: AudioChunk) -> None:
        pass

    def speech_between(self, stream: Stream, start: int, end: int) -> float:
        return 0.0

    def stats(self) -> dict[str, float]:
        return {}


class SpeechDetector:
    """Speech segments of the current stream, on its clock, for the last `keep_seconds`.

    Holds no audio but the frame being filled, the 64-sample context and the resampler's filter state. Counters
    `frames` (32 ms frames analysed) and `speech_seconds` (speech found, unpadded) run across streams.
    """

    def __init__(self, model: SpeechModel, options: SpeechOptions = SpeechOptions()):
        self.model = model
        self.options = options
        self.frames = 0
        self.speech_seconds = 0.0
        self._stream: Stream | None = None
        self._ended = True
        self._segments: deque[tuple[int, int]] = deque()  # padded, merged, on the stream's clock
        self._horizon = 0  # the timeline answers from this sample of the stream on
        self._pending: np.ndarray  # these two are set with the rest of a stream's state by _begin
        self._received: int

    def push(self, chunk: AudioChunk) -> None:
        """Analyse a chunk. A chunk of another stream, or any chunk after a `last` one, starts afresh."""
        if chunk.stream != self._stream or self._ended:
            self._begin(chunk)
        audio = self._converter.push(chunk.samples, last=chunk.last)
        self._received += len(audio)
        self._pending = np.concatenate([self._pending, audio])
        if chunk.last:
            self._pending = np.concatenate([self._pending, np.zeros(-len(self._pending) % FRAME, np.float32)])
        self._analyse()
        if chunk.last:
            self._end()
        self._prune()

    def speech_between(self, stream: Stream, start: int, end: int) -> float:
        """Seconds of (padded) speech overlapping samples [start, end) of `stream`, as analysed so far.

        Ask after pushing the audio of the span: its last frame (up to 32 ms, plus what the resampler holds
        back) may still be pending, and speech counts once it has lasted `min_speech`. Raises ValueError for
        another stream than the last one pushed, or a span starting more than `keep_seconds` back.
        """
        if stream != self._stream:
            current = self._stream.id if self._stream else "none"
            raise ValueError(f"no speech timeline for stream {stream.id!r} (the detector follows {current!r})")
        if start < self._horizon:
            raise ValueError(
                f"samples before {self._horizon} of {stream.id!r} are forgotten "
                f"(keep_seconds={self.options.keep_seconds})"
            )
        segments = list(self._segments)
        if (ongoing := self._ongoing()) is not None:
            segments.append(self._padded(*ongoing))
        return union_overlap(segments, start, end) / stream.sample_rate

    @property
    def segments(self) -> list[tuple[int, int]]:
        """Finished speech segments kept, padded and merged: [start, end) samples on the stream's clock."""
        return list(self._segments)

    @property
    def analysed(self) -> int:
        """The sample of the stream up to which speech is known."""
        return self._to_stream(self._position) if self._stream else 0

    def stats(self) -> dict[str, float]:
        return {"speech_frames": self.frames, "speech_seconds": round(self.speech_seconds, 3)}

    @property
    def _current(self) -> Stream:
        """The stream followed: the first push() sets it."""
        if self._stream is None:
            raise RuntimeError("no stream pushed yet: push() a chunk first")
        return self._stream

    def _begin(self, chunk: AudioChunk) -> None:
        if not self._ended:
            self._end()  # the previous stream was cut short: count what it had
        self._stream, self._ended = chunk.stream, False
        self._origin = chunk.start
        self._horizon = chunk.start
        self._segments.clear()
        self._converter = RateConverter(chunk.stream.sample_rate, RATE)
        self._state = self.model.initial_state()
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._received = 0  # 16 kHz samples of real audio, without the padding of the last frame
        self._position = 0  # 16 kHz samples analysed
        self._speech_start: int | None = None  # 16 kHz sample where the current segment began
        self._silence_start: int | None = None  # ...and where the silence that may end it began

    def _analyse(self) -> None:
        count = len(self._pending) // FRAME
        for first in range(0, count, MAX_FRAMES):
            frames = self._pending[first * FRAME : min(count, first + MAX_FRAMES) * FRAME].reshape(-1, FRAME)
            contexts = np.concatenate([self._context[None], frames[:-1, -CONTEXT:]])
            probs, self._state = self.model.run(np.concatenate([contexts, frames], axis=1), self._state)
            self._context = frames[-1, -CONTEXT:].copy()
            for prob in probs:
                self._step(float(prob))
        self._pending = self._pending[count * FRAME :].copy()

    def _step(self, prob: float) -> None:
        """One frame of silero's hysteresis (get_speech_timestamps without its max_speech split)."""
        position = self._position
        self._position += FRAME
        self.frames += 1
        if prob >= self.options.threshold:
            self._silence_start = None
            if self._speech_start is None:
                self._speech_start = position
        elif prob < self.options.negative and self._speech_start is not None:
            if self._silence_start is None:
                self._silence_start = position
            if position - self._silence_start >= self.options.min_silence * RATE:
                self._close(self._silence_start)

    def _close(self, end: int) -> None:
        start, self._speech_start, self._silence_start = self._speech_start, None, None
        assert start is not None  # called only while a segment is open
        if end - start > self.options.min_speech * RATE:
            self.speech_seconds += (end - start) / RATE
            first, last = self._padded(start, end)
            if self._segments and first <= self._segments[-1][1]:
                first = self._segments.pop()[0]
            self._segments.append((first, last))

    def _ongoing(self) -> tuple[int, int] | None:
        """The segment still open at the end of the analysed audio, once it is long enough to count."""
        if self._speech_start is None:
            return None
        end = self._position if self._silence_start is None else self._silence_start
        return (self._speech_start, end) if end - self._speech_start > self.options.min_speech * RATE else None

    def _end(self) -> None:
        """The stream is over: close its segment at its last real sample and drop all audio state."""
        if self._speech_start is not None:
            end = self._received if self._silence_start is None else self._silence_start
            self._close(min(end, self._received))
        self._ended = True
        self._pending = np.zeros(0, np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._state = self.model.initial_state()

    def _prune(self) -> None:
        self._horizon = max(self._horizon, self.analysed - round(self.options.keep_seconds * self._current.sample_rate))
        while self._segments and self._segments[0][1] <= self._horizon:
            self._segments.popleft()

    def _padded(self, start: int, end: int) -> tuple[int, int]:
        """[start, end) at 16 kHz as stream samples, grown by `padding` each side (not before the stream)."""
        pad = round(self.options.padding * self._current.sample_rate)
        return max(self._origin, self._to_stream(start) - pad), self._to_stream(end) + pad

    def _to_stream(self, sample: int) -> int:
        return self._origin + round(sample * self._current.sample_rate / RATE)
