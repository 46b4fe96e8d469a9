"""Small line charts drawn by the station as SVG: a box's health figures over a day, one panel per figure on a
shared time axis.

A day of health records every few seconds is far more points than a chart is wide: time is cut into
BUCKETS slices, each drawn as its worst value (the highest load, the least free space), so a peak is never
averaged away. A silence (the box off, its link down) breaks the line instead of bridging it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH = 640
PANEL_HEIGHT = 90
GAP = 26  # between panels: room for each panel's title
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 20, 22
BUCKETS = 320


@dataclass(frozen=True)
class Series:
    """A figure over time: (time, value) points, oldest first; `worst` picks a slice's value (max or min);
    `top` a fixed top of the scale (100 for a percentage), else one rounded up from the highest value;
    `mark` a reference line (1 for the real-time factor: above it a box falls behind)."""

    title: str
    unit: str
    points: Sequence[tuple[datetime, float]]
    worst: Callable[[Sequence[float]], float] = max
    top: float | None = None
    mark: float | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    top: float  # SVG y of the panel's top
    height: float
    scale_top: str  # the value at the top of the scale, as written
    lines: list[str]  # SVG polyline `points`, one per stretch without a silence
    mark_y: float | None
    last: str  # the newest value, as written


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    panels: list[Panel]
    ticks: list[Tick]


def draw(series: Sequence[Series], start: datetime, end: datetime, tick_every: timedelta = timedelta(hours=3)) -> Chart:
    """The panels of `series` between `start` and `end` (aware datetimes), with time ticks at round hours of
    the station's local time."""
    inner = WIDTH - LEFT - RIGHT
    seconds = (end - start).total_seconds()

    def x_of(moment: datetime) -> float:
        return LEFT + inner * (moment - start).total_seconds() / seconds

    panels = []
    for index, one in enumerate(series):
        top = TOP + index * (PANEL_HEIGHT + GAP)
        panels.append(panel(one, top, start, seconds, x_of))
    height = TOP + len(series) * (PANEL_HEIGHT + GAP) - GAP + BOTTOM
    return Chart(WIDTH, height, LEFT, WIDTH - RIGHT, panels, ticks(start, end, tick_every, x_of))


def panel(series: Series, top: float, start: datetime, seconds: float, x_of: Callable[[datetime], float]) -> Panel:
    slices = bucketed(series.points, start, seconds, series.worst)
    values = [value for _, value in slices]
    scale_top = series.top if series.top is not None else rounded_up(max(values, default=0.0))

    def y_of(value: float) -> float:
        return top + PANEL_HEIGHT * (1 - min(max(value / scale_top, 0.0), 1.0))

    lines = []
    for stretch in stretches(slices, seconds / BUCKETS):
        xy = [(x_of(moment), y_of(value)) for moment, value in stretch]
        if len(xy) == 1:  # a point alone: a dash, so that it shows
            xy.append((xy[0][0] + 2, xy[0][1]))
        lines.append(" ".join(f"{x:.1f},{y:.1f}" for x, y in xy))
    mark_y = y_of(series.mark) if series.mark is not None and series.mark <= scale_top else None
    last = f"{series.points[-1][1]:.3g} {series.unit}".strip() if series.points else "–"
    return Panel(series.title, top, PANEL_HEIGHT, f"{scale_top:g}", lines, mark_y, last)


def bucketed(
    points: Sequence[tuple[datetime, float]], start: datetime, seconds: float, worst: Callable[[Sequence[float]], float]
) -> list[tuple[datetime, float]]:
    """One point per slice of time that has any: the slice's worst value, at the time of its last point."""
    slices: dict[int, list[tuple[datetime, float]]] = {}
    for moment, value in points:
        index = min(int((moment - start).total_seconds() / seconds * BUCKETS), BUCKETS - 1)
        slices.setdefault(max(index, 0), []).append((moment, value))
    return [(found[-1][0], worst([value for _, value in found])) for _, found in sorted(slices.items())]


def stretches(points: list[tuple[datetime, float]], slice_s: float) -> list[list[tuple[datetime, float]]]:
    """The points cut where the time between two is much longer than usual (a silence)."""
    if len(points) < 2:
        return [points] if points else []
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(points, points[1:], strict=False)]
    allowed = max(3 * statistics.median(gaps), 2.5 * slice_s)
    found = [[points[0]]]
    for gap, point in zip(gaps, points[1:], strict=True):
        if gap > allowed:
            found.append([])
        found[-1].append(point)
    return found


def rounded_up(value: float) -> float:
    """1, 2 or 5 times a power of ten, at least `value` (and above zero)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def ticks(start: datetime, end: datetime, every: timedelta, x_of: Callable[[datetime], float]) -> list[Tick]:
    local = start.astimezone()
    moment = local.replace(minute=0, second=0, microsecond=0)
    step_h = max(1, int(every.total_seconds() // 3600))
    moment += timedelta(hours=(step_h - moment.hour % step_h) % step_h)
    if moment < local:
        moment += timedelta(hours=step_h)
    found = []
    while moment <= end - every / 8:  # a tick at the very end would have its time cut off
        found.append(Tick(round(x_of(moment), 1), f"{moment:%H:%M}"))
        moment += timedelta(hours=step_h)
    return found
