"""Members active by day or by night: the ensemble runs those the schedule lets run at the window's time,
says when each starts or stops, and runs every member when the stream's time is unknown."""

from datetime import UTC, datetime

import numpy as np
import pytest
from structlog.testing import capture_logs

from edge.audio.windower import Windower, WindowSpec
from edge.inference.ensemble import MemberSpec, load_ensemble
from edge.inference.member import MemberOptions
from edge.types import AudioChunk, Stream
from support.models import write_waveform_model

FRANKFURT = (50.1, 8.7)  # 2019-05-22: sunset 19:13:59 UTC; 2019-05-23: sunrise 03:29:22 UTC
SPEC = WindowSpec(5.0, 5.0)
SPECS = [MemberSpec("birds", active="day"), MemberSpec("bats", active="night"), MemberSpec("frogs")]


@pytest.fixture
def ensemble(tmp_path):
    for name in ("birds", "bats", "frogs"):
        write_waveform_model(tmp_path, name=name)
    return load_ensemble(tmp_path, SPECS, SPEC, MemberOptions(), place=FRANKFURT)


def windows_from(started_utc, rng, seconds=10):
    stream = Stream(f"s{started_utc}", 16000, started_utc)
    audio = rng.uniform(-1, 1, seconds * 16000).astype(np.float32)
    return Windower(SPEC, (16000,)).push(AudioChunk(stream, 0, audio))


def test_day_members_run_by_day_and_night_members_by_night(ensemble, rng):
    with capture_logs() as logs:
        noon = ensemble.score(windows_from(datetime(2019, 5, 22, 12, tzinfo=UTC), rng))
        afternoon = ensemble.score(windows_from(datetime(2019, 5, 22, 15, tzinfo=UTC), rng))
        night = ensemble.score(windows_from(datetime(2019, 5, 22, 23, tzinfo=UTC), rng))
    assert {s.model for s in noon} == {s.model for s in afternoon} == {"birds+frogs"}
    assert {s.model for s in night} == {"bats+frogs"}
    assert ensemble.held_off == {0}
    changes = [(e["member"], e["state"], e["until"][:16]) for e in logs if e["event"] == "member_scheduled"]
    assert changes == [
        ("birds", "active", "2019-05-22T19:13"),  # once at the first window, not again at 15:00
        ("bats", "inactive", "2019-05-22T19:13"),
        ("birds", "inactive", "2019-05-23T03:29"),
        ("bats", "active", "2019-05-23T03:29"),
    ]


def test_guard_levers_and_schedule_meet(ensemble, rng):
    windows = windows_from(datetime(2019, 5, 22, 23, tzinfo=UTC), rng)
    assert {s.model for s in ensemble.score(windows, active=[0, 2])} == {"frogs"}, "bats shed by the guard"


def test_a_stream_of_unknown_time_runs_every_member_and_says_so_once(ensemble, rng):
    with capture_logs() as logs:
        first = ensemble.score(windows_from(None, rng))
        second = ensemble.score(windows_from(None, rng))
    assert {s.model for s in first + second} == {"birds+bats+frogs"}
    assert [e["event"] for e in logs] == ["schedule_time_unknown"]
    assert ensemble.held_off == frozenset()


def test_when_the_schedule_holds_every_member_off_windows_score_zero(tmp_path, rng):
    write_waveform_model(tmp_path, name="bats")
    ensemble = load_ensemble(tmp_path, [MemberSpec("bats", active="night")], SPEC, MemberOptions(), place=FRANKFURT)
    scores = ensemble.score(windows_from(datetime(2019, 5, 22, 12, tzinfo=UTC), rng))
    assert len(scores) == 2 and all(s.model == "" and not s.probabilities.any() for s in scores)


def test_a_scheduled_member_needs_the_place(tmp_path):
    write_waveform_model(tmp_path, name="bats")
    with pytest.raises(
        ValueError,
        match=r"bats is active by night only: sunrise and sunset need the box.s place \(\[species\] latitude",
    ):
        load_ensemble(tmp_path, [MemberSpec("bats", active="night")], SPEC, MemberOptions())
