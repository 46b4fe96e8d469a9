"""What the station's tests share."""

from __future__ import annotations

import pytest

from support.broker import Mosquitto


@pytest.fixture
def broker(tmp_path):
    """A mosquitto of the test's own on 127.0.0.1, configured as the README tells a station to."""
    mosquitto = Mosquitto(tmp_path / "broker").start()
    yield mosquitto
    mosquitto.stop()
