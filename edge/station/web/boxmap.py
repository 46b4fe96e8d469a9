"""A plain map of the boxes, drawn by the station itself (it may have no internet, so no tiles): each box's
position projected on a flat sheet, with a scale bar and a north arrow.

The projection is equirectangular about the boxes' middle latitude: over the few kilometres a set of boxes
covers, distances on the sheet are true to well under a percent, in both directions, so one scale bar holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

KM_PER_DEGREE = math.pi * 6371.0088 / 180  # along a meridian, on the mean Earth radius
WIDTH, HEIGHT = 640, 400  # the sheet, in SVG units
MARGIN = 48  # around the boxes: room for their names and the scale bar
LABEL_GAP = 11  # from a dot's centre to its name
MIN_SPAN_KM = 0.5  # one box alone, or boxes on one spot, still get a sheet of some size
LABEL_ROOM = 140  # a name starting closer than this to the right edge is written to the left of its dot


@dataclass(frozen=True)
class Pin:
    """A box on the sheet; its name is written from label_x, on the side `anchor` says (SVG text-anchor)."""

    box: str
    x: float
    y: float
    label_x: float
    anchor: str


@dataclass(frozen=True)
class ScaleBar:
    x: float
    y: float
    length: float  # SVG units
    label: str  # "2 km", "500 m"


@dataclass(frozen=True)
class BoxMap:
    width: int
    height: int
    pins: list[Pin]
    scale: ScaleBar
    km_per_unit: float


def draw(places: Sequence[tuple[str, float, float]], width: int = WIDTH, height: int = HEIGHT) -> BoxMap | None:
    """The sheet for (box, latitude, longitude) places; None when there are none."""
    if not places:
        return None
    longitudes = unwrapped([lon for _, _, lon in places])
    latitudes = [lat for _, lat, _ in places]
    middle_lat = (max(latitudes) + min(latitudes)) / 2
    middle_lon = (max(longitudes) + min(longitudes)) / 2
    east = KM_PER_DEGREE * math.cos(math.radians(middle_lat))  # km per degree of longitude there
    xs = [(lon - middle_lon) * east for lon in longitudes]
    ys = [(lat - middle_lat) * KM_PER_DEGREE for lat in latitudes]
    span_x = max(max(xs) - min(xs), MIN_SPAN_KM)
    span_y = max(max(ys) - min(ys), MIN_SPAN_KM)
    units_per_km = min((width - 2 * MARGIN) / span_x, (height - 2 * MARGIN) / span_y)
    pins = []
    for (box, _, _), x_km, y_km in zip(places, xs, ys, strict=True):
        x = width / 2 + x_km * units_per_km
        y = height / 2 - y_km * units_per_km  # north up
        left = x > width - LABEL_ROOM
        pins.append(
            Pin(
                box,
                round(x, 1),
                round(y, 1),
                round(x - LABEL_GAP if left else x + LABEL_GAP, 1),
                "end" if left else "start",
            )
        )
    return BoxMap(width, height, pins, scale_bar(units_per_km, width, height), 1 / units_per_km)


def unwrapped(longitudes: list[float]) -> list[float]:
    """Longitudes of boxes on both sides of the 180th meridian, made continuous (179.9 and -179.9 are 22 km
    apart, not a world)."""
    if max(longitudes) - min(longitudes) > 180:
        return [lon + 360 if lon < 0 else lon for lon in longitudes]
    return longitudes


def scale_bar(units_per_km: float, width: int, height: int) -> ScaleBar:
    """A bar of a round length (1, 2 or 5 times a power of ten) about a quarter of the sheet wide."""
    target_km = width / 4 / units_per_km
    power = 10 ** math.floor(math.log10(target_km))
    km = max(step * power for step in (1, 2, 5) if step * power <= target_km)
    label = f"{km:g} km" if km >= 1 else f"{km * 1000:g} m"
    return ScaleBar(16, height - 18, round(km * units_per_km, 1), label)
