"""Birds and bats from one microphone: the daemon on a 384 kHz (and a 256 kHz) recording with BirdNET alone,
BatDetect2 alone and both, side by side in one run: CPU seconds per audio second, and what share of the
daemon's default budget (half a core) each takes in real time."""

from __future__ import annotations

from pathlib import Path

BUDGET = 0.5  # cores: the daemon's default [budget] cpu
CONFIGURATIONS = {
    "BirdNET": [{"name": "birdnet-v2.4"}],
    "BatDetect2": [{"name": "batdetect2-uk"}],
    "BirdNET + BatDetect2": [{"name": "birdnet-v2.4"}, {"name": "batdetect2-uk"}],
}


def bats_table(folder: Path, minutes: float) -> str:
    """The table for recordings of `minutes` at 384 and 256 kHz (the bench's recordings, upsampled: the cost
    of BatDetect2's network does not depend on what it hears)."""
    from tools.bench.__main__ import Bench, make_input

    lines = [
        "",
        "birds and bats on one stream (the daemon, 1 thread; budget share = CPU per audio second / 0.5 core)",
        f"  {'recording':10}{'members':24}{'CPU s':>8}{'CPU/audio s':>13}{'budget share':>14}{'RSS MB':>8}",
    ]
    for rate in (384000, 256000):
        place = folder / f"bats_{rate}"
        place.mkdir()
        audio, seconds = make_input(place, minutes, rate)
        bench = Bench(place, audio, seconds)
        for name, members in CONFIGURATIONS.items():
            # A bat detector alone knows none of the default alert classes (gunshots, engines): none are asked.
            stats = bench.edge(members, env={"EDGE_ALERTS__CLASSES": "[]"})
            per_second = stats["cpu"] / seconds
            lines.append(
                f"  {rate // 1000:>3} kHz   {name:24}{stats['cpu']:8.1f}{per_second:13.3f}"
                f"{per_second / BUDGET:13.0%} {stats['rss_mb']:8.0f}"
            )
    return "\n".join(lines)
