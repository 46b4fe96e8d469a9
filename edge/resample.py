"""Streaming sample-rate conversion of one stream to one rate (libsoxr, high quality)."""

from __future__ import annotations

import numpy as np
import soxr


class RateConverter:
    """Converts successive blocks of one stream from `in_rate` to `out_rate`, keeping filter state between them.

    Output is aligned with the input (libsoxr removes its own delay), so sample n of the output sits at
    n / out_rate seconds into the stream.
    """

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)
