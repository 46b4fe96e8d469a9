"""Sunrise and sunset in UTC at a place, by NOAA's solar calculator formulas (from Meeus' Astronomical
Algorithms; NOAA gives them as within a minute between 72 degrees south and north, within ten minutes beyond).

"Day" is from sunrise to sunset: the sun's upper limb above the horizon, its centre above -0.833 degrees
(refraction and the sun's radius). North of the Arctic circle in June (south of the Antarctic one in December)
the sun never sets, and in the opposite season never rises: polar day and polar night.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

HORIZON = 90.833  # zenith angle of sunrise and sunset, degrees
J2000 = datetime(2000, 1, 1, 12, tzinfo=UTC)  # Julian day 2451545.0


@dataclass(frozen=True)
class SunTimes:
    """One day's sunrise and sunset (UTC), around the day's local solar noon: west of Greenwich the sunset
    may fall on the next UTC date. Both are None in polar day or night, which `polar` names."""

    sunrise: datetime | None
    sunset: datetime | None
    polar: Literal["day", "night"] | None = None


def _sun(moment: datetime) -> tuple[float, float]:
    """The sun's declination (radians) and the equation of time (minutes) at `moment`."""
    t = (moment - J2000).total_seconds() / 86400 / 36525  # Julian centuries since J2000
    mean_long = math.radians((280.46646 + t * (36000.76983 + t * 0.0003032)) % 360)
    anomaly = math.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    eccentricity = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    centre = (
        math.sin(anomaly) * (1.914602 - t * (0.004817 + 0.000014 * t))
        + math.sin(2 * anomaly) * (0.019993 - 0.000101 * t)
        + math.sin(3 * anomaly) * 0.000289
    )
    omega = math.radians(125.04 - 1934.136 * t)
    apparent_long = mean_long + math.radians(centre - 0.00569 - 0.00478 * math.sin(omega))
    seconds = 21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))
    obliquity = math.radians(23 + (26 + seconds / 60) / 60 + 0.00256 * math.cos(omega))
    declination = math.asin(math.sin(obliquity) * math.sin(apparent_long))
    y = math.tan(obliquity / 2) ** 2
    e, m, lo = eccentricity, anomaly, mean_long
    equation = (
        y * math.sin(2 * lo)
        - 2 * e * math.sin(m)
        + 4 * e * y * math.sin(m) * math.cos(2 * lo)
        - 0.5 * y * y * math.sin(4 * lo)
        - 1.25 * e * e * math.sin(2 * m)
    )
    return declination, 4 * math.degrees(equation)


def _hour_angle(latitude: float, declination: float) -> float | None:
    """Degrees from solar noon to sunrise (or sunset); 180 when the sun never sets, None when it never rises."""
    lat = math.radians(latitude)
    cos_h = math.cos(math.radians(HORIZON)) / (math.cos(lat) * math.cos(declination)) - math.tan(lat) * math.tan(
        declination
    )
    if cos_h < -1:
        return 180.0
    if cos_h > 1:
        return None
    return math.degrees(math.acos(cos_h))


def _event(day: date, latitude: float, longitude: float, sign: int) -> datetime | None | Literal["day", "night"]:
    """Sunrise (sign -1) or sunset (+1) of `day`, computed again at the estimate until it settles."""
    noon = datetime.combine(day, time(12), tzinfo=UTC) - timedelta(minutes=4 * longitude)
    moment = noon
    for _ in range(3):
        declination, equation = _sun(moment)
        angle = _hour_angle(latitude, declination)
        if angle is None or angle == 180.0:
            return "night" if angle is None else "day"
        moment = noon + timedelta(minutes=sign * 4 * angle - equation)
    return moment


def sun_times(day: date, latitude: float, longitude: float) -> SunTimes:
    """Sunrise and sunset of `day` at `latitude` (degrees north) and `longitude` (degrees east)."""
    rise, set_ = _event(day, latitude, longitude, -1), _event(day, latitude, longitude, +1)
    if isinstance(rise, datetime) and isinstance(set_, datetime):
        return SunTimes(rise, set_)
    polar = rise if isinstance(rise, str) else set_
    assert isinstance(polar, str)
    return SunTimes(None, None, polar)


def is_day(moment: datetime, latitude: float, longitude: float) -> bool:
    """Whether the sun is up (between sunrise and sunset) at `moment`, an aware datetime."""
    declination, equation = _sun(moment)
    utc = moment.astimezone(UTC)
    minutes = utc.hour * 60 + utc.minute + (utc.second + utc.microsecond / 1e6) / 60
    hour_angle = math.radians((minutes + equation + 4 * longitude) / 4 - 180)
    lat = math.radians(latitude)
    cos_zenith = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(declination) * math.cos(hour_angle)
    return cos_zenith > math.cos(math.radians(HORIZON))


def next_change(moment: datetime, latitude: float, longitude: float) -> datetime | None:
    """The first sunrise or sunset after `moment` (a polar day or night may last months); None if there is
    none within a year."""
    first = moment.astimezone(UTC).date() - timedelta(days=1)
    for days in range(368):
        times = sun_times(first + timedelta(days=days), latitude, longitude)
        for event in (times.sunrise, times.sunset):
            if event is not None and event > moment:
                return event
    return None
