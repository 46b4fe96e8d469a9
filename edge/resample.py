"""Streaming sample-rate conversion of one stream to one rate.

Two resamplers: `kaiser_fast` (the default) computes exactly what BirdNET-Analyzer and birdnetlib get from
`librosa.load(..., res_type="kaiser_fast")`, i.e. resampy's Kaiser-windowed sinc, so that BirdNET's scores
and thresholds carry over at every input rate; `soxr` is libsoxr's high-quality filter.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soxr

RESAMPLERS = ("kaiser_fast", "soxr")
# resampy's precomputed kaiser_fast half-window (see kaiser_fast.LICENSE.txt): 24 zero crossings, 512 table
# entries per crossing. Shipped as data so that the box needs neither resampy nor numba.
KAISER_FAST = Path(__file__).with_name("kaiser_fast.npy")
TABLE_PER_CROSSING = 512
BLOCK_OUTPUTS = 8192  # outputs computed per matrix product: bounds the memory of one push


class RateConverter:
    """libsoxr: converts successive blocks of one stream from `in_rate` to `out_rate`, keeping filter state
    between them. Output is aligned with the input (libsoxr removes its own delay), so sample n of the output
    sits at n / out_rate seconds into the stream."""

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)


def phase_filters(in_rate: int, out_rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One FIR per output phase, as resampy interpolates its table for output t = 0 .. phases - 1.

    Returns the filters [phases, left + right] over input samples n(t) - left + 1 .. n(t) + right, the input
    index n(t) = floor(t * in_rate / out_rate) of each phase, and `left`. Output t = q * phases + r uses filter
    r at n(r) + q * in_rate / g (g the rates' gcd): the pattern repeats exactly every `phases` outputs.
    """
    ratio = float(out_rate) / in_rate
    window = np.load(KAISER_FAST)
    if ratio < 1:
        window = ratio * window  # resampy scales the window itself when it lowers the rate
    delta = np.diff(window, append=window[-1])
    scale = min(1.0, ratio)
    step = int(scale * TABLE_PER_CROSSING)
    wing = len(window) // step + 1  # the most taps either wing can have
    phases = out_rate // gcd(in_rate, out_rate)
    times = np.arange(phases) * (1.0 / ratio)
    n = times.astype(np.int64)
    frac = scale * (times - n)
    left, right = _wing(window, delta, step, wing, frac), _wing(window, delta, step, wing, scale - frac)
    return np.concatenate([left[:, ::-1], right], axis=1), n, wing


def _wing(window: np.ndarray, delta: np.ndarray, step: int, wing: int, frac: np.ndarray) -> np.ndarray:
    """Linear interpolation in the table at fractional position `frac` (per phase), one tap per crossing step."""
    position = frac * TABLE_PER_CROSSING
    offset = position.astype(np.int64)
    eta = position - offset
    taps = np.arange(wing)
    used = taps[None, :] < ((len(window) - offset) // step)[:, None]  # resampy's own count of taps
    index = np.where(used, offset[:, None] + taps[None, :] * step, 0)
    return np.where(used, window[index] + eta[:, None] * delta[index], 0.0)


class KaiserFastConverter:
    """resampy's `kaiser_fast` (librosa's res_type="kaiser_fast"), streamed: the input it still needs (the
    filter's history and look-ahead) is carried between blocks, so the output does not depend on how the
    stream is cut, and equals librosa's whole-signal result: floor(n * ratio) interpolated samples, then zeros
    up to ceil(n * ratio) as librosa's fix_length pads. Output sample t sits at t / out_rate seconds."""

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._filters, self._phase_start, wing = phase_filters(in_rate, out_rate)
        self._phases, self._taps = self._filters.shape
        self._in_per_period = in_rate // gcd(in_rate, out_rate)
        self._x = np.zeros(wing - 1)  # the silence before the stream, on which the first outputs' left wing lies
        self._x_start = 1 - wing  # stream index of _x[0]
        self._received = 0
        self._next = 0  # index of the next output sample

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        self._x = np.concatenate([self._x, np.asarray(samples, dtype=np.float64)])
        self._received += len(samples)
        if last:
            self._x = np.concatenate([self._x, np.zeros(self._taps)])
            end = int(self._received * float(self.out_rate) / float(self.in_rate))  # resampy's length
        else:
            end = self._ready()
        out = self._compute(self._next, max(end, self._next))
        if last:
            padded = int(np.ceil(self._received * (float(self.out_rate) / self.in_rate)))  # librosa's length
            out = np.concatenate([out, np.zeros(max(0, padded - self._next), np.float32)])
        self._drop_before(self._first_input(self._next))
        return out

    def _first_input(self, t: int) -> int:
        """Stream index of the first input sample output t reads."""
        period, phase = divmod(t, self._phases)
        return period * self._in_per_period + int(self._phase_start[phase]) - (self._taps // 2 - 1)

    def _ready(self) -> int:
        """Outputs before this index read only samples already received."""
        last_centre = self._received - 1 - self._taps // 2
        return 0 if last_centre < 0 else last_centre * self.out_rate // self.in_rate + 1

    def _compute(self, start: int, end: int) -> np.ndarray:
        out = np.empty(end - start, np.float32)
        for block in range(start, end, BLOCK_OUTPUTS):
            stop = min(end, block + BLOCK_OUTPUTS)
            out[block - start : stop - start] = self._block(block, stop)
        self._next = end
        return out

    def _block(self, start: int, end: int) -> np.ndarray:
        """Outputs start .. end - 1: for each phase, its filter over every in_per_period-th window of input."""
        views = np.lib.stride_tricks.sliding_window_view(self._x, self._taps)
        out = np.empty(end - start)
        for phase in range(self._phases):
            first = start + (phase - start) % self._phases
            if first >= end:
                continue
            count = (end - 1 - first) // self._phases + 1
            at, stride = self._first_input(first) - self._x_start, self._in_per_period
            out[first - start :: self._phases] = views[at : at + count * stride : stride] @ self._filters[phase]
        return out

    def _drop_before(self, index: int) -> None:
        if index > self._x_start:
            self._x = self._x[index - self._x_start :]
            self._x_start = index


def rate_converter(in_rate: int, out_rate: int, resampler: str = "kaiser_fast"):
    """The streaming converter named `resampler` (one of RESAMPLERS); at equal rates both pass samples through."""
    if resampler not in RESAMPLERS:
        raise ValueError(f"unknown resampler {resampler!r}: choose one of {', '.join(RESAMPLERS)}")
    if resampler == "soxr" or in_rate == out_rate:
        return RateConverter(in_rate, out_rate)
    return KaiserFastConverter(in_rate, out_rate)
