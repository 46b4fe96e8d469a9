"""Live latency: seconds from the moment a window's last sample reached the box to the end of its analysis
(scored, smoothed, its events published and committed)."""

from __future__ import annotations

from collections import deque

import numpy as np

from edge.types import AudioChunk, Window


class Latencies:
    """Keeps the latencies of the recent windows (at most `keep`); `summary` reports and forgets them."""

    def __init__(self, keep: int = 10_000):
        self._recent: deque[float] = deque(maxlen=keep)

    def record(self, chunk: AudioChunk, windows: list[Window], done: float) -> None:
        """`windows` were completed by `chunk` (their last sample is in it) and were done at `done`."""
        if chunk.received is None:
            return
        rate = chunk.stream.sample_rate
        for window in windows:
            waited_in_chunk = max(chunk.end - min(window.end, chunk.end), 0) / rate
            self._recent.append(done - (chunk.received - waited_in_chunk))

    def values(self) -> list[float]:
        return list(self._recent)

    def summary(self) -> dict[str, float | None]:
        values = np.array(self._recent)
        self._recent.clear()
        if not len(values):
            return {"latency_p50_s": None, "latency_p95_s": None, "latency_max_s": None}
        p50, p95 = np.percentile(values, [50, 95])
        return {
            "latency_p50_s": round(float(p50), 3),
            "latency_p95_s": round(float(p95), 3),
            "latency_max_s": round(float(values.max()), 3),
        }
