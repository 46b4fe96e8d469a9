"""Which members run at a moment: each is active "always", by "day" (sunrise to sunset at the box's place) or
by "night" (the rest), so that one box runs bat models at night and bird models by day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import structlog

from edge.inference.sun import is_day, next_change

log = structlog.get_logger(__name__)

Active = Literal["always", "day", "night"]


class Schedule:
    """The members' `active` settings at `place` (latitude, longitude in degrees); logs `member_scheduled`
    when a scheduled member becomes active or inactive (its first moment included)."""

    def __init__(self, names: Sequence[str], active: Sequence[Active], place: tuple[float, float] | None):
        pairs = zip(names, active, strict=True)
        scheduled = [f"{name} is active by {when} only" for name, when in pairs if when != "always"]
        if scheduled and place is None:
            raise ValueError(
                f"{', '.join(scheduled)}: sunrise and sunset need the box's place ([species] latitude and "
                "longitude; edge replay's --lat and --lon)"
            )
        self.names = tuple(names)
        self.active = tuple(active)
        self.place = place
        self._state: dict[int, bool] = {}  # scheduled member -> active at the last moment asked

    @property
    def scheduled(self) -> bool:
        return any(when != "always" for when in self.active)

    def held_off(self, moment: datetime) -> frozenset[int]:
        """The members the schedule keeps from running at `moment`, an aware datetime."""
        if self.place is None or not self.scheduled:
            return frozenset()
        day = is_day(moment, *self.place)
        off = set()
        for i, when in enumerate(self.active):
            if when == "always":
                continue
            on = day if when == "day" else not day
            if self._state.get(i) != on:
                self._state[i] = on
                until = next_change(moment, *self.place)
                log.info(
                    "member_scheduled",
                    member=self.names[i],
                    state="active" if on else "inactive",
                    at=moment.isoformat(),
                    until=None if until is None else until.isoformat(timespec="seconds"),
                )
            if not on:
                off.add(i)
        return frozenset(off)
