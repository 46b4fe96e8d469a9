"""Live-mode runs of the benchmark: the daemon in this process, fed a recording paced as a microphone would
deliver it, so that every window's latency and every stage's cost can be read from the daemon itself.

Latency is measured from the moment a window's last sample is due (as a microphone would have delivered it) to
the end of its analysis: scored by every member, blended, smoothed, its events written and committed.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from edge.app.daemon import Daemon
from edge.app.latency import Latencies
from edge.app.notify import Notifier
from edge.app.sections import BudgetSettings, HealthSettings, ModelSettings, WindowSettings
from edge.app.settings import Settings
from edge.sources.files import ReplayConfig


class KeptLatencies(Latencies):
    """Every window's latency, kept for the tables: the daemon's health record reports and forgets them, and it
    publishes one as the run ends."""

    def __init__(self):
        super().__init__()
        self.kept: list[float] = []

    def record(self, chunk, windows, done) -> None:
        alone = Latencies()
        alone.record(chunk, windows, done)
        self.kept += alone.values()
        super().record(chunk, windows, done)


@dataclass
class LiveResult:
    latencies: np.ndarray  # seconds, one per window
    stages: dict  # stage name -> StageCost
    windows: int
    audio_seconds: float
    cpu_seconds: float
    shed: list[dict]  # the guard's load_shed / load_restored log entries, with the audio time they came at
    final_load: str


def run_live(
    recording: Path,
    models_dir: Path,
    members: list[dict],
    speed: float | None,
    cpu_budget: float | None,
    hop: float = 2.5,
    settle_seconds: float = 10.0,
) -> LiveResult:
    """One paced replay through a daemon built in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            box_id="bench",
            data_dir=Path(tmp),
            models_dir=models_dir,
            source=ReplayConfig(paths=[recording], speed=speed),
            model=ModelSettings(members=members),
            window=WindowSettings(seconds=5.0, hop=hop),
            budget=BudgetSettings(cpu_budget=cpu_budget, settle_seconds=settle_seconds),
            health=HealthSettings(interval_seconds=86400),  # the longest allowed: none during a run
        )
        daemon = Daemon(settings, Path(tmp) / "unused.toml", Notifier(None))
        daemon.latencies = latencies = KeptLatencies()
        daemon.start()
        cpu = time.process_time()
        with structlog.testing.capture_logs() as logs:
            daemon.run()
        cpu = time.process_time() - cpu
        daemon.stop()
        shed = [entry for entry in logs if entry["event"] in ("load_shed", "load_restored")]
        return LiveResult(
            latencies=np.array(latencies.kept),
            stages=daemon.stages.snapshot(),
            windows=daemon.health.windows,
            audio_seconds=daemon.health.audio_seconds,
            cpu_seconds=cpu,
            shed=shed,
            final_load=daemon.guard.stats()["load"],
        )


def latency_table(title: str, result: LiveResult) -> str:
    p50, p95, p99 = np.percentile(result.latencies, [50, 95, 99]) if len(result.latencies) else (np.nan,) * 3
    lines = [
        f"{title}: {result.windows} windows, {result.audio_seconds:.0f} s of audio, "
        f"{result.cpu_seconds / result.audio_seconds:.3f} CPU-s per audio s",
        f"  latency, last sample of a window to its events committed: p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {result.latencies.max() * 1000:.0f} ms",
        f"  {'stage':34}{'CPU ms/window':>14}{'wall ms/window':>16}{'items':>8}",
    ]
    for name, cost in sorted(result.stages.items(), key=lambda item: -item[1].wall):
        lines.append(
            f"  {name:34}{1000 * cost.cpu / max(result.windows, 1):14.2f}"
            f"{1000 * cost.wall / max(result.windows, 1):16.2f}{cost.items:8d}"
        )
    return "\n".join(lines)


def fast_feed_table(title: str, result: LiveResult, speed: float) -> str:
    """How the load and the latency evolved while audio came faster than the full load can be analysed."""
    lat = result.latencies
    third = max(len(lat) // 3, 1)
    wall = result.audio_seconds / speed
    lines = [
        f"{title}: {result.windows} windows, {result.cpu_seconds / wall:.2f} cores used on average, "
        f"final load: {result.final_load}"
    ]
    for entry in result.shed:
        lines.append(
            f"  {entry['event']:14} -> level {entry['level']}: {entry['load']} "
            f"(measured {entry['cost']:.3f} CPU-s per audio s)"
        )
    lines.append(
        f"  latency p95: first third {np.percentile(lat[:third], 95) * 1000:.0f} ms, last third "
        f"{np.percentile(lat[-third:], 95) * 1000:.0f} ms; max {lat.max() * 1000:.0f} ms"
    )
    return "\n".join(lines)
