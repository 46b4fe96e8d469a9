"""The periodic health record: is the box keeping up, is its input flowing, is its card filling, is its clock right."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import psutil

from edge.storage.faults import disks_of
from edge.wire.records import health_record

# Every record carries these, whatever the source, so that a subscriber reads one schema; a source fills in
# what applies to it (queue depth in files or in seconds of audio, overflows of a sound card...).
# damaged_seconds: audio analysed as silence in place of samples that are not numbers (inf, NaN) or of
# stretches of a file that could not be decoded.
SOURCE_FIELDS = {
    "queue_seconds": 0.0,
    "files_pending": 0,
    "input_overflows": 0,
    "dropped_blocks": 0,
    "restarts": 0,
    "files_done": 0,
    "files_quarantined": 0,
    "damaged_seconds": 0.0,
}

# adjtimex(2) returns TIME_ERROR (5) while the kernel's clock is not synchronised (STA_UNSYNC): no NTP, no GPS.
TIME_ERROR = 5
TIMEX_BYTES = 512  # larger than struct timex on every architecture; only the return value is read
EARLIEST_PLAUSIBLE_YEAR = 2025  # a box without a real-time clock boots in 1970 or at its last shutdown


def clock_state(now: datetime | None = None) -> str:
    """ "synchronized", "unsynchronized" (free-running: times may drift), "implausible" (before 2025) or
    "unknown" (the kernel would not say)."""
    now = now or datetime.now(UTC)
    if now.year < EARLIEST_PLAUSIBLE_YEAR:
        return "implausible"
    try:
        state = libc().adjtimex(ctypes.create_string_buffer(TIMEX_BYTES))
    except (OSError, AttributeError):
        return "unknown"
    if state < 0:  # refused (a seccomp filter without adjtimex): nothing known
        return "unknown"
    return "unsynchronized" if state == TIME_ERROR else "synchronized"


@functools.cache
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Health:
    """Counts what the loop did; `record()` turns the counts since the previous record into rates.

    real_time_factor is CPU seconds spent per second of audio analysed (0.05: 5 % of one core keeps up with a
    live stream; above 1 the box falls behind a live stream even with a whole core).
    """

    def __init__(self, box: str, data_dir: Path, stores: Mapping[str, Path] | None = None):
        self.box = box
        self.data_dir = data_dir
        # Each store may sit on a disk of its own: disk_free_* is the fullest of them, `disks` each one.
        self.stores = dict(stores or {"data": data_dir})
        self.process = psutil.Process()
        self.started = time.monotonic()
        self.audio_seconds = 0.0
        self.windows = 0
        self.events = 0
        self._last = (time.monotonic(), self._cpu_seconds(), 0.0)
        self.process.cpu_percent(None)  # starts psutil's interval

    def _cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def record(self, source_stats: Mapping[str, int | float], extra: Mapping[str, object] | None = None) -> dict:
        now, cpu = time.monotonic(), self._cpu_seconds()
        then, cpu_then, audio_then = self._last
        audio = self.audio_seconds - audio_then
        self._last = (now, cpu, self.audio_seconds)
        disks = disks_of(self.stores)
        fullest = min(disks.values(), key=lambda d: d["free_percent"], default={})
        return health_record(
            self.box,
            {
                "uptime_s": round(now - self.started, 1),
                "audio_seconds": round(self.audio_seconds, 1),
                "windows": self.windows,
                "events": self.events,
                "interval_s": round(now - then, 1),
                "interval_audio_s": round(audio, 1),
                "real_time_factor": round((cpu - cpu_then) / audio, 4) if audio > 0 else None,
                "cpu_percent": round(self.process.cpu_percent(None), 1),
                "rss_mb": round(self.process.memory_info().rss / 1e6, 1),
                "disk_free_mb": fullest.get("free_mb"),
                "disk_free_percent": fullest.get("free_percent"),
                "disks": disks,
                "clock": clock_state(),
                **SOURCE_FIELDS,
                **dict(source_stats),
                **dict(extra or {}),
            },
        )
