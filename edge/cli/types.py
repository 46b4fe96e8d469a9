"""Option types of the `edge` commands."""

from __future__ import annotations

import math

import click


class FiniteRange(click.FloatRange):
    """A float in a range that is also finite: click's own range lets "nan" through (every comparison with NaN
    is false), and "inf" through an open-ended one."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class GapOrOff(FiniteRange):
    """Seconds (0 to 60), or "off"."""

    name = "seconds or off"

    def __init__(self):
        super().__init__(0, 60)

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
            return None
        return super().convert(value, param, ctx)
