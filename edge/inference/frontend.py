"""Turns batches of crops (waveforms at a member's rate) into the tensor the member's ONNX graph takes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.inference.manifest import LogMelSpec, Manifest
from edge.inference.stages import Stages


def hz_to_mel(hz: float | np.ndarray, scale: str) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above.
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filterbank(spec: LogMelSpec, sample_rate: int) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] triangular filters."""
    fmax = spec.fmax if spec.fmax is not None else sample_rate / 2
    bins = np.linspace(0, sample_rate / 2, spec.n_fft // 2 + 1)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(spec.fmin, spec.mel_scale), hz_to_mel(fmax, spec.mel_scale), spec.n_mels + 2),
        spec.mel_scale,
    )
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if spec.mel_norm == "slaney":
        weights *= 2.0 / (upper - lower)
    return weights.T.astype(np.float32)


class LogMelFrontEnd:
    def __init__(self, spec: LogMelSpec, sample_rate: int):
        self.spec = spec
        self.window = np.hanning(spec.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
        self.filters = mel_filterbank(spec, sample_rate)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        spec = self.spec
        if spec.center:
            crops = np.pad(crops, ((0, 0), (spec.n_fft // 2, spec.n_fft // 2)), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(crops, spec.n_fft, axis=1)[:, :: spec.hop_length]
        power = np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** spec.power
        db = 10.0 * np.log10(np.maximum(power @ self.filters, spec.amin))  # [batch, frames, mels]
        if spec.top_db is not None:
            db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - spec.top_db)
        db = self._normalise(db).transpose(0, 2, 1).astype(np.float32)
        return db[:, None] if spec.layout == "nchw" else db

    def _normalise(self, db: np.ndarray) -> np.ndarray:
        if self.spec.normalise == "zscore":
            return (db - db.mean(axis=(1, 2), keepdims=True)) / (db.std(axis=(1, 2), keepdims=True) + 1e-6)
        if self.spec.normalise == "minmax":
            low = db.min(axis=(1, 2), keepdims=True)
            return (db - low) / (db.max(axis=(1, 2), keepdims=True) - low + 1e-6)
        return db


def front_end_for(manifest: Manifest) -> Callable[[np.ndarray], np.ndarray]:
    """The callable that maps [batch, input_length] crops to the model's input tensor."""
    if manifest.input_kind == "logmel":
        assert manifest.logmel is not None  # the manifest's loader sets it for every logmel model
        return LogMelFrontEnd(manifest.logmel, manifest.sample_rate)
    return lambda crops: np.ascontiguousarray(crops, dtype=np.float32)


def front_end_key(manifest: Manifest) -> tuple:
    """Members whose keys are equal take the same tensor for the same crop."""
    return manifest.input_kind, manifest.logmel, manifest.sample_rate, manifest.input_length


class SharedFrontEnd:
    """One front-end for every member that declares it: a crop's features are computed once, by whichever
    member asks first, and kept until `clear` (the ensemble clears it after each batch of windows)."""

    def __init__(self, manifest: Manifest, stages: Stages):
        self.compute = front_end_for(manifest)
        self.stages = stages
        spec = manifest.logmel
        shape = f"{spec.n_mels}x{spec.hop_length}" if spec else ""
        self.name = f"{manifest.input_kind}{shape}@{manifest.sample_rate}"
        self.memoise = manifest.input_kind != "waveform"  # the waveform is its own feature: nothing to share
        self._memo: dict[object, np.ndarray] = {}

    def features(self, keys: list, crops: np.ndarray) -> np.ndarray:
        if not self.memoise:
            return self.compute(crops)
        missing = [i for i, key in enumerate(keys) if key not in self._memo]
        if missing:
            with self.stages.measure(f"frontend:{self.name}", items=len(missing)):
                self._memo.update(zip((keys[i] for i in missing), self.compute(crops[missing]), strict=True))
        return np.stack([self._memo[key] for key in keys])

    def clear(self) -> None:
        self._memo.clear()
