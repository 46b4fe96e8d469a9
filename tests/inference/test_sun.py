"""Sunrise and sunset against published times, polar day and night, and the day/night test between them."""

from datetime import UTC, date, datetime, timedelta

import pytest

from edge.inference.sun import is_day, next_change, sun_times

LONDON = (51.5074, -0.1278)
NEW_YORK = (40.7128, -74.0060)
SYDNEY = (-33.8688, 151.2093)
TROMSO = (69.6492, 18.9553)  # 350 km north of the Arctic circle


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Sunrise and sunset as almanacs publish them, to the minute, in local time: London 04:43 and 21:21 BST at
# midsummer, 08:04 and 15:53 GMT at midwinter; New York 05:25 and 20:31 EDT; Sydney 05:41 and 20:05 AEDT.
# Here in UTC.
PUBLISHED = [
    (LONDON, date(2021, 6, 21), "2021-06-21 03:43", "2021-06-21 20:21"),
    (LONDON, date(2021, 12, 21), "2021-12-21 08:04", "2021-12-21 15:53"),
    (NEW_YORK, date(2021, 6, 21), "2021-06-21 09:25", "2021-06-22 00:31"),  # sunset on the next UTC date
    (SYDNEY, date(2021, 12, 21), "2021-12-20 18:41", "2021-12-21 09:05"),  # sunrise on the previous one
]


@pytest.mark.parametrize(("place", "day", "sunrise", "sunset"), PUBLISHED)
def test_sunrise_and_sunset_within_two_minutes_of_published_times(place, day, sunrise, sunset):
    times = sun_times(day, *place)
    assert times.polar is None
    assert abs(times.sunrise - utc(sunrise)) <= timedelta(minutes=2)
    assert abs(times.sunset - utc(sunset)) <= timedelta(minutes=2)


def test_north_of_the_arctic_circle_the_sun_never_sets_in_june_and_never_rises_in_december():
    june, december = sun_times(date(2021, 6, 21), *TROMSO), sun_times(date(2021, 12, 21), *TROMSO)
    assert (june.sunrise, june.sunset, june.polar) == (None, None, "day")
    assert (december.sunrise, december.sunset, december.polar) == (None, None, "night")
    for hour in range(24):
        assert is_day(utc(f"2021-06-21 {hour:02}:00"), *TROMSO)
        assert not is_day(utc(f"2021-12-21 {hour:02}:00"), *TROMSO)
    # The midnight sun ends in late July and the polar night in mid-January: months ahead, still found.
    assert utc("2021-07-15 00:00") < next_change(utc("2021-06-21 12:00"), *TROMSO) < utc("2021-08-01 00:00")
    assert utc("2022-01-05 00:00") < next_change(utc("2021-12-21 12:00"), *TROMSO) < utc("2022-01-20 00:00")


@pytest.mark.parametrize(("place", "day", "sunrise", "sunset"), PUBLISHED)
def test_day_is_between_sunrise_and_sunset(place, day, sunrise, sunset):
    times = sun_times(day, *place)
    minute = timedelta(minutes=1)
    assert not is_day(times.sunrise - minute, *place) and is_day(times.sunrise + minute, *place)
    assert is_day(times.sunset - minute, *place) and not is_day(times.sunset + minute, *place)
    assert next_change(times.sunrise - minute, *place) == times.sunrise
    assert next_change(times.sunrise + minute, *place) == times.sunset
