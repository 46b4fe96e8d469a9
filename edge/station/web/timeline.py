"""A day of detections as a chart drawn on the server (SVG, no script): species on rows, the station's local
hours across, one mark per detection coloured by its confidence; when there are too many marks to tell apart,
one cell per species and quarter of an hour instead, coloured by its highest confidence and shaded by its
count. Only the geometry is made here; templates/timeline.html draws it (escaped like the rest of the page).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from edge.station import search

WIDTH = 960
LABELS = 210  # the species names' column
TOP = 24  # the hours' labels
LANE = 18
BOTTOM = 34  # the colour scale
MAX_LANES = 40
MAX_MARKS = 600  # more detections than this in the day: a cell per quarter of an hour
NAME_CHARACTERS = 30


@dataclass(frozen=True)
class Mark:
    x: float
    width: float
    colour: str
    opacity: float
    title: str


@dataclass(frozen=True)
class Lane:
    y: float
    name: str  # as drawn (cut short)
    title: str  # in full
    link: str
    detections: int
    marks: list[Mark]


@dataclass(frozen=True)
class Chart:
    day: date
    width: int
    height: int
    plot_x: int
    plot_width: int
    hours: list[tuple[float, str]]  # (x, local clock) of each hour line; labelled every third
    lanes: list[Lane]
    binned: bool
    detections: int
    hidden: int  # species beyond MAX_LANES, not drawn
    scale: list[tuple[int, str, str]]  # the colour key: (x, colour, confidence)


def colour(confidence: float) -> str:
    """Amber for the least confident (0.25 and below) to deep blue for certain."""
    t = min(max((confidence - 0.25) / 0.75, 0.0), 1.0)
    return f"hsl({45 + t * 185:.0f}, 75%, {62 - t * 32:.0f}%)"


@dataclass(frozen=True)
class Axis:
    """The day across the plot: its UTC start, its length in hours (23 or 25 when the clocks change)."""

    start: datetime
    hours: int
    width: float = WIDTH - LABELS - 24  # room for the last hour's label

    def x(self, hour: float) -> float:
        return LABELS + min(max(hour, 0.0), self.hours) / self.hours * self.width

    def clock(self, minutes: float) -> str:
        return f"{(self.start + timedelta(minutes=minutes)).astimezone():%H:%M}"


def chart(db: sqlite3.Connection, filters: search.Filters, day: date, link: Callable[[str], str]) -> Chart:
    """The chart of `day` (the station's local day) for the detections the filters choose; `link` gives the
    address of a species' detections."""
    start_utc, end_utc = search.local_day(day)
    on_day = replace(filters, since_utc=start_utc, until_utc=end_utc)
    start = datetime.fromisoformat(start_utc)
    axis = Axis(start, round((datetime.fromisoformat(end_utc) - start).total_seconds() / 3600))
    slots = search.day_slots(db, on_day, start_utc)
    counts: dict[str, int] = defaultdict(int)
    names: dict[str, str] = {}
    for row in slots:
        counts[row["scientific_name"]] += row["detections"]
        names[row["scientific_name"]] = row["common_name"] or row["scientific_name"] or "(no name)"
    total = sum(counts.values())
    binned = total > MAX_MARKS
    marks = cells(slots, names, axis) if binned else ticks(search.day_marks(db, on_day, start_utc), names, axis)
    order = sorted(counts, key=lambda s: (-counts[s], names[s]))[:MAX_LANES]
    lanes = [
        Lane(TOP + i * LANE, shorter(names[s]), names[s], link(s), counts[s], marks[s]) for i, s in enumerate(order)
    ]
    return Chart(
        day=day,
        width=WIDTH,
        height=TOP + max(len(lanes), 1) * LANE + BOTTOM,
        plot_x=LABELS,
        plot_width=round(axis.width),
        hours=[(axis.x(h), axis.clock(60 * h)) for h in range(axis.hours + 1)],
        lanes=lanes,
        binned=binned,
        detections=total,
        hidden=len(counts) - len(lanes),
        scale=[(LABELS + i * 60, colour(c), f"{c:.2f}") for i, c in enumerate((0.25, 0.4, 0.55, 0.7, 0.85, 1.0))],
    )


def cells(slots: list[sqlite3.Row], names: dict[str, str], axis: Axis) -> dict[str, list[Mark]]:
    """Per species, a cell per quarter hour with detections: its colour their highest confidence, its shade
    their number against the busiest cell's."""
    most = max(row["detections"] for row in slots)
    width = axis.width / (axis.hours * 4)
    marks: dict[str, list[Mark]] = defaultdict(list)
    for row in slots:
        slot = min(max(row["slot"], 0), axis.hours * 4 - 1)
        title = (
            f"{names[row['scientific_name']]}, {axis.clock(15 * slot)}–{axis.clock(15 * slot + 15)}: "
            f"{row['detections']} detections, highest confidence {row['confidence']:.2f}"
        )
        shade = round(0.3 + 0.7 * row["detections"] / most, 2)
        marks[row["scientific_name"]].append(Mark(axis.x(slot / 4), width, colour(row["confidence"]), shade, title))
    return marks


def ticks(rows: list[sqlite3.Row], names: dict[str, str], axis: Axis) -> dict[str, list[Mark]]:
    """Per species, a thin mark at each detection, in the colour of its confidence."""
    marks: dict[str, list[Mark]] = defaultdict(list)
    for row in rows:
        heard = datetime.fromisoformat(row["time_utc"]).astimezone()
        name = names.get(row["scientific_name"], row["common_name"] or row["scientific_name"])
        title = f"{name}, {row['box']}, {heard:%H:%M:%S}: confidence {row['confidence']:.2f}"
        marks[row["scientific_name"]].append(Mark(axis.x(row["hour"]) - 1, 2.5, colour(row["confidence"]), 0.9, title))
    return marks


def shorter(name: str) -> str:
    return name if len(name) <= NAME_CHARACTERS else name[: NAME_CHARACTERS - 1] + "…"
