"""One model of the ensemble: an ONNX Runtime session scoring crops on a grid in absolute stream time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.inference.frontend import SharedFrontEnd
from edge.inference.manifest import Manifest
from edge.inference.sessions import make_session
from edge.inference.stages import Stages
from edge.types import Label, Stream, Window

CropKey = tuple[int, int, int]  # start of the crop, and the stream range [lo, hi) of its real samples


@dataclass(frozen=True)
class MemberOptions:
    """`crop_stride` (seconds) places crops on the grid k * crop_stride of the stream when the model's input is
    shorter than the window. `sensitivity` is BirdNET-Analyzer's (0.5 to 1.5): higher values flatten the
    sigmoid, so more classes reach a confidence threshold below 0.5. `batch` is the most crops per session run
    (a manifest may ask for fewer: `[input] batch`).
    ONNX Runtime's thread counts: `intra_op_threads` inside an operator (1: the caller's thread alone),
    `inter_op_threads` across independent branches of the graph.
    """

    crop_stride: float = 1.0
    sensitivity: float = 1.0
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    batch: int = 4


def flat_sigmoid(logits: np.ndarray, sensitivity: float) -> np.ndarray:
    """BirdNET-Analyzer's activation: logits clipped to +-15, slope 2 - sensitivity (kept within 0.5..1.5)."""
    slope = max(0.5, min(2.0 - sensitivity, 1.5))
    return 1.0 / (1.0 + np.exp(-slope * np.clip(logits, -15.0, 15.0)))


def crop_starts(window_length: int, offset: int, input_length: int, step: float, moved: int = 0) -> list[int]:
    """Where a window's crops start, in samples into the window: on the stream grid k * step + moved, those that
    fit in the window (the first one at least). A window not longer than the input is one crop, at `moved`."""
    if window_length <= input_length:
        return [moved]
    k = int(np.ceil((offset - moved) / step - 1e-9))
    starts = [round(k * step) + moved - offset]
    while round((k + 1) * step) + moved + input_length <= offset + window_length:
        k += 1
        starts.append(round(k * step) + moved - offset)
    return starts


class Member:
    """Scores windows by max-pooling the probabilities of the crops inside them.

    Crop k covers samples [round(k * stride * rate), + input_length) of the stream at the member's rate; a
    crop is scored once and reused by every window that contains it. A window not longer than the model's
    input is scored as one crop, zero-padded.

    Time-shift test-time augmentation: each shift s (seconds) in `shifts` adds a variant whose crops sit s later
    on the stream (the grid moved by s, or the window's single crop moved by s, zero-padded where it leaves the
    window); a window's score is the mean of its variants' max-pooled scores.
    """

    def __init__(
        self,
        manifest: Manifest,
        options: MemberOptions = MemberOptions(),
        shifts: tuple[float, ...] = (),
        front_end: SharedFrontEnd | None = None,
        stages: Stages | None = None,
    ):
        self.manifest = manifest
        self.options = options
        self.shifts = tuple(shifts)
        self.labels: tuple[Label, ...] = manifest.labels()
        self.session = make_session(manifest.verified_path(), options.intra_op_threads, options.inter_op_threads)
        self.stages = stages or Stages()
        self.front_end = front_end or SharedFrontEnd(manifest, self.stages)
        self._cache: dict[CropKey, np.ndarray] = {}
        self._cache_stream: Stream | None = None
        width = self.session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != len(self.labels):
            raise ValueError(f"{manifest.name}: model has {width} outputs but {len(self.labels)} labels")

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def sample_rate(self) -> int:
        return self.manifest.sample_rate

    def score(self, windows: list[Window], tta: bool = True) -> list[np.ndarray]:
        """Probabilities [n_labels] for each window; the new crops of all of them go through shared batches."""
        if windows and windows[0].stream != self._cache_stream:
            self._cache, self._cache_stream = {}, windows[0].stream
        variants = (0.0, *self.shifts) if tta else (0.0,)
        plans = [[self._crops_of(window, shift) for shift in variants] for window in windows]
        pending: dict[CropKey, np.ndarray] = {}
        for plan in plans:
            for crops in plan:
                pending.update((key, audio) for key, audio in crops.items() if audio is not None)  # None: cached
        if pending:
            self._cache.update(zip(pending, self._run(list(pending), np.stack(list(pending.values()))), strict=True))
        scores = [
            np.mean([np.max([self._cache[key] for key in crops], axis=0) for crops in plan], axis=0) for plan in plans
        ]
        if plans:
            oldest_needed = min(key[0] for crops in plans[-1] for key in crops)
            self._cache = {key: p for key, p in self._cache.items() if key[0] >= oldest_needed}
        return scores

    def _crops_of(self, window: Window, shift: float) -> dict[CropKey, np.ndarray | None]:
        """The window's crops for one variant; audio is only cut for crops not cached."""
        audio = window.audio[self.sample_rate]
        offset = window.offset[self.sample_rate]
        length = self.manifest.input_length
        step = self.options.crop_stride * self.sample_rate
        crops: dict[CropKey, np.ndarray | None] = {}
        for at in crop_starts(len(audio), offset, length, step, round(shift * self.sample_rate)):
            lo, hi = max(at, 0), max(min(at + length, len(audio)), 0)
            key = (offset + at, offset + lo, offset + hi)
            crops[key] = None if key in self._cache else self._cut(audio, at, lo, hi)
        return crops

    def _cut(self, audio: np.ndarray, at: int, lo: int, hi: int) -> np.ndarray:
        """The crop starting `at` samples into the window; zeros where it runs past either end."""
        crop = np.zeros(self.manifest.input_length, np.float32)
        crop[lo - at : hi - at] = audio[lo:hi]
        return crop

    def _run(self, keys: list[CropKey], crops: np.ndarray) -> np.ndarray:
        outputs = []
        batch = min(self.options.batch, self.manifest.batch or self.options.batch)
        for i in range(0, len(crops), batch):
            features = self.front_end.features(keys[i : i + batch], crops[i : i + batch])
            with self.stages.measure(f"member:{self.name}", items=len(features)):
                (out,) = self.session.run([self.manifest.output_name], {self.manifest.input_name: features})
            outputs.append(out)
        raw = np.concatenate(outputs)
        if self.manifest.output_kind == "logits":
            return flat_sigmoid(raw, self.options.sensitivity)
        return raw
