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


def chart(db: sqlite3.Connection, filters: search.Filters, day: date, link: Callable[[str], str]) -> Chart:
    """The chart of `day` (the station's local day) for the detections the filters choose; `link` gives the
    address of a species' detections."""
    start_utc, end_utc = search.local_day(day)
    on_day = replace(filters, since_utc=start_utc, until_utc=end_utc)
    start = datetime.fromisoformat(start_utc)
    hours = round((datetime.fromisoformat(end_utc) - start).total_seconds() / 3600)
    plot_width = WIDTH - LABELS - 24  # room for the last hour's label

    def x(hour: float) -> float:
        return LABELS + min(max(hour, 0.0), hours) / hours * plot_width

    slots = search.day_slots(db, on_day, start_utc)
    counts: dict[str, int] = defaultdict(int)
    names: dict[str, str] = {}
    for row in slots:
        counts[row["scientific_name"]] += row["detections"]
        names[row["scientific_name"]] = row["common_name"] or row["scientific_name"] or "(no name)"
    order = sorted(counts, key=lambda s: (-counts[s], names[s]))[:MAX_LANES]
    total = sum(counts.values())
    binned = total > MAX_MARKS
    marks: dict[str, list[Mark]] = defaultdict(list)
    if binned:
        most = max(row["detections"] for row in slots)
        width = plot_width / (hours * search.SLOTS_PER_DAY / 24)
        quarters = [f"{(start + timedelta(minutes=15 * n)).astimezone():%H:%M}" for n in range(hours * 4 + 1)]
        for row in slots:
            slot = min(max(row["slot"], 0), hours * 4 - 1)
            title = (
                f"{names[row['scientific_name']]}, {quarters[slot]}–{quarters[slot + 1]}: {row['detections']} "
                f"detections, highest confidence {row['confidence']:.2f}"
            )
            opacity = 0.3 + 0.7 * row["detections"] / most
            marks[row["scientific_name"]].append(
                Mark(x(slot / 4), width, colour(row["confidence"]), round(opacity, 2), title)
            )
    else:
        for row in search.day_marks(db, on_day, start_utc):
            heard = datetime.fromisoformat(row["time_utc"]).astimezone()
            name = names.get(row["scientific_name"], row["common_name"] or row["scientific_name"])
            title = f"{name}, {row['box']}, {heard:%H:%M:%S}: confidence {row['confidence']:.2f}"
            marks[row["scientific_name"]].append(Mark(x(row["hour"]) - 1, 2.5, colour(row["confidence"]), 0.9, title))
    lanes = [
        Lane(TOP + i * LANE, shorter(names[s]), names[s], link(s), counts[s], marks[s]) for i, s in enumerate(order)
    ]
    hour_lines = [(x(h), f"{(start + timedelta(hours=h)).astimezone():%H:%M}") for h in range(hours + 1)]
    scale = [(LABELS + i * 60, colour(c), f"{c:.2f}") for i, c in enumerate((0.25, 0.4, 0.55, 0.7, 0.85, 1.0))]
    return Chart(
        day,
        WIDTH,
        TOP + max(len(lanes), 1) * LANE + BOTTOM,
        LABELS,
        plot_width,
        hour_lines,
        lanes,
        binned,
        total,
        len(counts) - len(lanes),
        scale,
    )


def shorter(name: str) -> str:
    return name if len(name) <= NAME_CHARACTERS else name[: NAME_CHARACTERS - 1] + "…"
