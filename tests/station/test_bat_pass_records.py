"""A bat pass as the station reads it: an event record with its calls and their peak frequency, checked at
the border like any field a box sends; alerts and bird events go on without them."""

import json

from edge.station.schemas import problem
from support.paths import ROOT

GOLDEN = ROOT / "tests" / "golden"


def golden(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text()) | {"seq": 1}  # numbered by the outbox as it is published


def test_a_bat_pass_is_an_event_with_its_calls():
    event = golden("event_v1.json")
    assert problem("events", event) is None, "a bird's event: no calls"
    bat_pass = {**event, "scientific_name": "Pipistrellus pipistrellus", "calls": 12, "peak_freq_hz": 46500}
    assert problem("events", bat_pass) is None
    assert problem("events", {**bat_pass, "calls": -1}) is not None
    assert problem("events", {**bat_pass, "peak_freq_hz": "46 kHz"}) is not None
    alert = golden("alert_v2.json") | {"detected_utc": "2019-05-22T10:00:13.000+00:00"}  # the golden's VARIES
    assert problem("alerts", alert) is None, "an alert needs no calls"
