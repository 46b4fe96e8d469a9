"""One model of the ensemble: an ONNX Runtime session scoring crops on a grid in absolute stream time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from edge.frontend import front_end_for
from edge.manifest import Manifest
from edge.types import Label, Window


@dataclass(frozen=True)
class MemberOptions:
    """`crop_stride` (seconds) places crops on the grid k * crop_stride of the stream when the model's input is
    shorter than the window. `sensitivity` is BirdNET-Analyzer's (0.5 to 1.5): higher values flatten the
    sigmoid, so more classes reach a confidence threshold below 0.5. `batch` is the most crops per session run.
    """

    crop_stride: float = 1.0
    sensitivity: float = 1.0
    intra_op_threads: int = 1
    batch: int = 8


def flat_sigmoid(logits: np.ndarray, sensitivity: float) -> np.ndarray:
    """BirdNET-Analyzer's activation: logits clipped to +-15, slope 2 - sensitivity (kept within 0.5..1.5)."""
    slope = max(0.5, min(2.0 - sensitivity, 1.5))
    return 1.0 / (1.0 + np.exp(-slope * np.clip(logits, -15.0, 15.0)))


def make_session(path, intra_op_threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Member:
    """Scores windows by max-pooling the probabilities of the crops inside them.

    Crop k covers samples [round(k * stride * rate), + input_length) of the stream at the member's rate; a
    crop is scored once and reused by every window that contains it. A window shorter than the model's
    input is scored as one crop, zero-padded.
    """

    def __init__(self, manifest: Manifest, options: MemberOptions = MemberOptions()):
        self.manifest = manifest
        self.options = options
        self.labels: tuple[Label, ...] = manifest.labels()
        self.session = make_session(manifest.path, options.intra_op_threads)
        self.front_end = front_end_for(manifest)
        self._cache: dict[int, np.ndarray] = {}
        self._cache_stream = None
        width = self.session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != len(self.labels):
            raise ValueError(f"{manifest.name}: model has {width} outputs but {len(self.labels)} labels")

    @property
    def sample_rate(self) -> int:
        return self.manifest.sample_rate

    def score(self, windows: list[Window]) -> list[np.ndarray]:
        """Probabilities [n_labels] for each window; the new crops of all of them go through shared batches."""
        if windows and windows[0].stream != self._cache_stream:
            self._cache, self._cache_stream = {}, windows[0].stream
        plans = [self._crops_of(window) for window in windows]
        pending: dict[int, np.ndarray] = {}
        for crops in plans:
            pending.update((start, audio) for start, audio in crops.items() if start not in self._cache)
        if pending:
            self._cache.update(zip(pending, self._run(np.stack(list(pending.values())))))
        scores = [np.max([self._cache[start] for start in crops], axis=0) for crops in plans]
        if plans:
            oldest_needed = min(plans[-1])
            self._cache = {start: p for start, p in self._cache.items() if start >= oldest_needed}
        return scores

    def _crops_of(self, window: Window) -> dict[int, np.ndarray]:
        """The window's crops by start sample on the member's clock; audio is only cut for crops not cached."""
        audio = window.audio[self.sample_rate]
        offset = window.offset[self.sample_rate]
        length = self.manifest.input_length
        if len(audio) <= length:  # the window is one crop, zero-padded to the model's input
            return {offset: np.pad(audio, (0, length - len(audio)))}
        step = self.options.crop_stride * self.sample_rate
        k = int(np.ceil(offset / step - 1e-9))
        crops = {}
        while round(k * step) + length <= offset + len(audio) or not crops:
            start = round(k * step)
            crops[start] = None if start in self._cache else self._cut(audio, start - offset)
            k += 1
        return crops

    def _cut(self, audio: np.ndarray, at: int) -> np.ndarray:
        crop = audio[at : at + self.manifest.input_length]
        return np.pad(crop, (0, self.manifest.input_length - len(crop)))

    def _run(self, crops: np.ndarray) -> np.ndarray:
        outputs = []
        for i in range(0, len(crops), self.options.batch):
            features = self.front_end(crops[i : i + self.options.batch])
            (out,) = self.session.run([self.manifest.output_name], {self.manifest.input_name: features})
            outputs.append(out)
        raw = np.concatenate(outputs)
        if self.manifest.output_kind == "logits":
            return flat_sigmoid(raw, self.options.sensitivity)
        return raw
