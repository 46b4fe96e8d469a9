"""A call detector (BatDetect2) as a member of the ensemble: it finds calls, the ensemble blends window scores.

The detector runs the stream in chunks that tile it on the windows' grid: the hop, cut into equal parts no
longer than the detector's own chunk (BatDetect2's 3 s), so that every window holds whole chunks, every chunk
lies in a window, and each chunk runs once however many windows hold it (with 5 s windows every 2.5 s, chunks
of 2.5 s). A window's score for a species is the highest probability that species has among the calls found
in its chunks, so the blend, the species screen and the smoother take a call detector as they take a
classifier. Calls reaching above the source's Nyquist frequency are dropped, as BatDetect2 drops them.
A chunk of digital silence is not run.
"""

from __future__ import annotations

import math

import numpy as np

from edge.audio.windower import WindowSpec
from edge.inference.calls import CallBox, CallDetector
from edge.inference.manifest import Manifest
from edge.inference.member import MemberOptions
from edge.inference.stages import Stages
from edge.types import Call, Label, Stream, Window


def chunk_seconds(hop: float, longest: float) -> float:
    """The hop cut into the fewest equal parts no longer than `longest`."""
    return hop / math.ceil(hop / longest - 1e-9)


class NoFrontEnd:
    """The detector computes its own spectrogram: nothing is shared for the ensemble to clear."""

    def clear(self) -> None:
        pass


class CallMember:
    """The ensemble's view of a call detector: `score` as a Member's, the calls behind each chunk kept in
    `calls` (stream chunk start -> its calls, times in seconds from the stream's start) until the windows
    have moved past them; `fresh`, per window of the last `score`, the calls of the chunks it ran first."""

    shifts: tuple[float, ...] = ()  # time-shift TTA means nothing to a detector that places calls itself

    def __init__(self, manifest: Manifest, options: MemberOptions, window: WindowSpec, stages: Stages | None = None):
        self.manifest = manifest
        self.options = options
        self.detector = CallDetector(manifest, options.intra_op_threads)
        self.labels: tuple[Label, ...] = self.detector.labels
        self.stages = stages or Stages()
        self.front_end = NoFrontEnd()
        self.chunk = round(chunk_seconds(window.hop, manifest.input_seconds) * manifest.sample_rate)
        self.calls: dict[int, list[CallBox]] = {}
        self.fresh: list[tuple[Call, ...]] = []
        self._stream: Stream | None = None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def sample_rate(self) -> int:
        return self.manifest.sample_rate

    def score(self, windows: list[Window], tta: bool = True) -> list[np.ndarray]:
        """Each window's probability per label: the highest among the calls found in its chunks."""
        if windows and windows[0].stream != self._stream:
            self.calls, self._stream = {}, windows[0].stream
        self.fresh = []
        scores = [self._score(window) for window in windows]
        if windows:
            oldest_needed = windows[-1].offset[self.sample_rate]
            self.calls = {at: calls for at, calls in self.calls.items() if at >= oldest_needed}
        return scores

    def _score(self, window: Window) -> np.ndarray:
        audio, offset = window.audio[self.sample_rate], window.offset[self.sample_rate]
        found = np.zeros(len(self.labels), np.float32)
        fresh: list[Call] = []
        for k in range(-(-offset // self.chunk), (offset + len(audio)) // self.chunk):
            at = k * self.chunk
            if at not in self.calls:
                self.calls[at] = self._find(audio[at - offset : at - offset + self.chunk], at, window.stream)
                fresh += [self._record(call, window.stream) for call in self.calls[at]]
            for call in self.calls[at]:
                np.maximum(found, call.probabilities, out=found)
        self.fresh.append(tuple(fresh))
        return found

    def _record(self, call: CallBox, stream: Stream) -> Call:
        best = call.best()
        return Call(
            stream=stream,
            start_s=call.start,
            end_s=call.end,
            low_freq=call.low_freq,
            high_freq=call.high_freq,
            peak_freq=call.low_freq if call.peak_freq is None else call.peak_freq,
            score=call.score,
            label=self.labels[best],
            probability=float(call.probabilities[best]),
            model=self.manifest.name,
            model_version=self.manifest.version,
        )

    def _find(self, audio: np.ndarray, at: int, stream: Stream) -> list[CallBox]:
        heard = np.flatnonzero(audio)
        if not len(heard):
            return []  # digital silence: a window's padding past the end of its stream, or a muted input
        with self.stages.measure(f"member:{self.name}", items=1):
            # Trailing zeros (the padding past the stream's end) left out: a recording's last chunk is run as
            # BatDetect2 runs a short file, its mean and attention over the recording's own samples.
            return self.detector.calls_at(audio[: heard[-1] + 1], at, nyquist=stream.sample_rate / 2)
