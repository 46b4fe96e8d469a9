"""Streaming sample-rate conversion of one stream to one rate.

Two resamplers: `kaiser_fast` (the default) computes exactly what BirdNET-Analyzer and birdnetlib get from
`librosa.load(..., res_type="kaiser_fast")`, i.e. resampy's Kaiser-windowed sinc, so that BirdNET's scores
and thresholds carry over at every input rate; `soxr` is libsoxr's high-quality filter.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path
from typing import Protocol

import numpy as np
import soxr
import structlog

log = structlog.get_logger(__name__)

RESAMPLERS = ("kaiser_fast", "soxr")
# resampy's precomputed kaiser_fast half-window (see kaiser_fast.LICENSE.txt): 24 zero crossings, 512 table
# entries per crossing. Shipped as data so that the box needs neither resampy nor numba.
KAISER_FAST = Path(__file__).with_name("kaiser_fast.npy")
TABLE_PER_CROSSING = 512
# A period is made at least this many input samples long (several of the shortest if need be), so that each
# matrix product does real work: 8 kHz to 48 kHz repeats after 1 sample, 32 kHz to 48 kHz after 2.
MIN_STRIDE = 64
# Multiply-adds per matrix product: small enough that OpenBLAS keeps it on the calling thread (it spreads a
# product over every core from 4 * 65536 on, and the spinning threads cost more CPU than they save here).
BLOCK_WORK = 200_000
# Largest period kernel (entries): every rate a recorder writes needs under 130,000 (11.025 kHz to 48 kHz, 640
# phases); a rate prime to 48000 (a header saying 47999 Hz) would need billions and gets libsoxr instead.
MAX_KERNEL = 1 << 20


class Converter(Protocol):
    """Converts successive blocks of one stream to another rate, keeping its state between them."""

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        """The converted samples of this block (with `last`, and of what the filter still holds)."""
        ...


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


def phase_filters(in_rate: int, out_rate: int, phases: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One FIR per output phase, as resampy interpolates its table for output t = 0 .. phases - 1.

    Returns the filters [phases, left + right] over input samples n(t) - left + 1 .. n(t) + right, the input
    index n(t) = floor(t * in_rate / out_rate) of each phase, and `left`. With `phases` a multiple of
    out_rate / g (g the rates' gcd), output t = q * phases + r uses filter r at n(r) + q * phases * in_rate /
    out_rate: the pattern repeats exactly.
    """
    ratio = float(out_rate) / in_rate
    window = np.load(KAISER_FAST)
    if ratio < 1:
        window = ratio * window  # resampy scales the window itself when it lowers the rate
    delta = np.diff(window, append=window[-1])
    scale = min(1.0, ratio)
    step = int(scale * TABLE_PER_CROSSING)
    wing = len(window) // step + 1  # the most taps either wing can have
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
    up to ceil(n * ratio) as librosa's fix_length pads. Output sample t sits at t / out_rate seconds.

    The work is done a period at a time: the outputs of period q read input from q * `stride` on. Each group
    of a period's phases has one kernel [rows, stride, phases of the group] from its own first input, so a
    block of periods is a few matrix products over the input laid out `stride` samples a row (no copy)."""

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate = in_rate
        self.out_rate = out_rate
        g = gcd(in_rate, out_rate)
        periods = -(-MIN_STRIDE // (in_rate // g))  # shortest periods in one
        self._stride = in_rate // g * periods
        self._groups, wing = period_kernels(in_rate, out_rate, self._stride, out_rate // g * periods)
        self._phases = sum(kernel.shape[2] for _, kernel in self._groups)
        self._reach = max(start + kernel.shape[0] * self._stride for start, kernel in self._groups)
        self._x = np.zeros(wing - 1)  # the silence before the stream, where the first outputs' left wing lies
        self._period = 0  # the period whose input starts at _x[0]
        self._received = 0
        self._next = 0  # index of the next output sample

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        self._x = np.concatenate([self._x, np.asarray(samples, dtype=np.float64)])
        self._received += len(samples)
        if last:
            end = int(self._received * float(self.out_rate) / float(self.in_rate))  # resampy's length
            periods = -(-end // self._phases)
            missing = (periods - 1 - self._period) * self._stride + self._reach - len(self._x)
            self._x = np.concatenate([self._x, np.zeros(max(0, missing))])
        else:  # whole periods whose input has all arrived
            end = max(0, (len(self._x) - self._reach) // self._stride + 1 + self._period) * self._phases
        out = self._compute(max(end, self._next))
        if last:
            padded = int(np.ceil(self._received * (float(self.out_rate) / self.in_rate)))  # librosa's length
            out = np.concatenate([out, np.zeros(max(0, padded - self._next), np.float32)])
        self._drop_before(self._next // self._phases)
        return out

    def _compute(self, end: int) -> np.ndarray:
        first, periods = self._next // self._phases, -(-end // self._phases)
        block = max(1, BLOCK_WORK // max(kernel[0].size for _, kernel in self._groups))
        parts = [self._periods(q, min(periods, q + block)) for q in range(first, periods, block)]
        out = np.concatenate([np.zeros(0), *parts])[self._next - first * self._phases : end - first * self._phases]
        self._next = max(end, self._next)
        return out.astype(np.float32)

    def _periods(self, first: int, stop: int) -> np.ndarray:
        """The outputs of periods first .. stop - 1, in order."""
        count = stop - first
        out, column = np.empty((count, self._phases)), 0
        for start, kernel in self._groups:
            rows, width = kernel.shape[0], kernel.shape[2]
            at = (first - self._period) * self._stride + start
            grid = self._x[at : at + (count + rows - 1) * self._stride].reshape(-1, self._stride)
            part = grid[:count] @ kernel[0]
            for row in range(1, rows):
                part += grid[row : row + count] @ kernel[row]
            out[:, column : column + width] = part
            column += width
        return out.reshape(-1)

    def _drop_before(self, period: int) -> None:
        if period > self._period:
            self._x = self._x[(period - self._period) * self._stride :]
            self._period = period


def period_kernels(in_rate: int, out_rate: int, stride: int, phases: int) -> tuple[list, int]:
    """phase_filters laid on a period's input, in groups of consecutive phases: (start, kernel) where
    kernel[row, i, phase] weighs input sample start + row * stride + i of the period (counted from its phase
    0's first input) for that phase's output. A period spanning many filter lengths of input (22.05 kHz: 147
    samples for a 50-tap filter) is split, so that no group's kernel is mostly zeros."""
    filters, phase_start, wing = phase_filters(in_rate, out_rate, phases)
    taps = filters.shape[1]
    groups = []
    for members in np.array_split(np.arange(phases), max(1, min(phases, stride // taps))):
        start = int(phase_start[members[0]])
        rows = -(-(int(phase_start[members[-1]]) - start + taps) // stride)
        kernel = np.zeros((rows * stride, len(members)))
        for column, phase in enumerate(members):
            offset = int(phase_start[phase]) - start
            kernel[offset : offset + taps, column] = filters[phase]
        groups.append((start, kernel.reshape(rows, stride, len(members))))
    return groups, wing


def rate_converter(in_rate: int, out_rate: int, resampler: str = "kaiser_fast") -> Converter:
    """The streaming converter named `resampler` (one of RESAMPLERS); at equal rates both pass samples through."""
    if resampler not in RESAMPLERS:
        raise ValueError(f"unknown resampler {resampler!r}: choose one of {', '.join(RESAMPLERS)}")
    if resampler == "soxr" or in_rate == out_rate:
        return RateConverter(in_rate, out_rate)
    if kernel_size(in_rate, out_rate) > MAX_KERNEL:
        log.warning(
            "resampler_fallback",
            resampler=resampler,
            used="soxr",
            in_rate=in_rate,
            out_rate=out_rate,
            reason="the rates repeat their pattern too seldom for a period kernel",
        )
        return RateConverter(in_rate, out_rate)
    return KaiserFastConverter(in_rate, out_rate)


def kernel_size(in_rate: int, out_rate: int) -> int:
    """About how many entries KaiserFastConverter's period kernels hold (phases x (period + filter length))."""
    g = gcd(in_rate, out_rate)
    periods = -(-MIN_STRIDE // (in_rate // g))
    step = int(min(1.0, out_rate / in_rate) * TABLE_PER_CROSSING)
    taps = 2 * (24 * TABLE_PER_CROSSING // step + 1)
    return out_rate // g * periods * (in_rate // g * periods + taps)
