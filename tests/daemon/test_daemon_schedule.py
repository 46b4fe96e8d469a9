"""Members scheduled by day and by night, on real models: a replay runs each recording with the members active
at its recorded time, and says when each member starts and stops."""

import shutil

from support.config import write_config
from support.processes import DaemonProcess
from support.records import read_records

FRANKFURT = {"latitude": 50.1, "longitude": 8.7, "range_threshold": 0.0}  # 2019-05-22: sunset 19:14 UTC


def test_a_replay_runs_day_members_by_day_and_night_members_by_night(data, tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    # The same songs twice, named with a time at noon and one at 23:00 UTC.
    for name in ("S4A03895_20190522_120000Z.wav", "S4A03895_20190522_230000Z.wav"):
        shutil.copy(data / "maad_spinetail.wav", recordings / name)
    members = [{"name": "birdnet-v2.4", "active": "day"}, {"name": "birdnet-v2.4-int8", "active": "night"}]
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "replay", "paths": [str(recordings)]},
        model={"members": members},
        species=FRANKFURT,  # the place; no range filter (every species kept)
    )
    daemon = DaemonProcess(config)
    assert daemon.wait_exit() == 0
    daemon.close()
    events = read_records(tmp_path / "data" / "records")
    by_source = {
        source: {e["model"] for e in events if e["source"] == source}
        for source in ("S4A03895_20190522_120000Z.wav", "S4A03895_20190522_230000Z.wav")
    }
    assert by_source == {
        "S4A03895_20190522_120000Z.wav": {"birdnet-v2.4"},  # the day member alone
        "S4A03895_20190522_230000Z.wav": {"birdnet-v2.4-int8"},  # the night member alone
    }
    changes = [(e["member"], e["state"], e["until"][:13]) for e in daemon.logged("member_scheduled")]
    assert changes == [
        ("birdnet-v2.4", "active", "2019-05-22T19"),
        ("birdnet-v2.4-int8", "inactive", "2019-05-22T19"),
        ("birdnet-v2.4", "inactive", "2019-05-23T03"),
        ("birdnet-v2.4-int8", "active", "2019-05-23T03"),
    ]
