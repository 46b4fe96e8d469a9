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

    def score(self, window: Window) -> np.ndarray:
        """Probabilities [n_labels] for the window."""
        audio = window.audio[self.sample_rate]
        length = self.manifest.input_length
        if len(audio) <= length:
            crop = np.zeros(length, np.float32)
            crop[: len(audio)] = audio
            return self._run(crop[None])[0]
        if window.stream != self._cache_stream:
            self._cache, self._cache_stream = {}, window.stream
        grid = self._crop_grid(window.offset[self.sample_rate], len(audio))
        missing = [k for k in grid if k not in self._cache]
        if missing:
            crops = np.stack([self._crop(audio, window.offset[self.sample_rate], k) for k in missing])
            for k, probabilities in zip(missing, self._run(crops)):
                self._cache[k] = probabilities
        first = grid[0]
        for k in [k for k in self._cache if k < first]:
            del self._cache[k]
        return np.max([self._cache[k] for k in grid], axis=0)

    def _crop_grid(self, offset: int, window_length: int) -> list[int]:
        step = self.options.crop_stride * self.sample_rate
        length = self.manifest.input_length
        first = int(np.ceil(offset / step - 1e-9))
        grid = []
        k = first
        while round(k * step) + length <= offset + window_length:
            grid.append(k)
            k += 1
        return grid or [first]

    def _crop(self, audio: np.ndarray, offset: int, k: int) -> np.ndarray:
        start = round(k * self.options.crop_stride * self.sample_rate) - offset
        crop = audio[start : start + self.manifest.input_length]
        if len(crop) < self.manifest.input_length:
            crop = np.pad(crop, (0, self.manifest.input_length - len(crop)))
        return crop

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
