"""The daemon under a CPU budget: live input sheds load down the ladder and says so; file input is paced."""

import shutil
import time

import pytest

from support.config import write_config
from support.processes import DaemonProcess
from support.records import read_records


def test_live_input_over_budget_sheds_tta_then_members_then_hop(data, tmp_path, models_with_birdclef):
    members = [{"name": "birdnet-v2.4", "priority": 1}, {"name": "birdclef-tiny", "tta": [-0.5, 0.5]}]
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": str(tmp_path / "unused")},
        models_dir=str(models_with_birdclef),
        model={"members": members},
        # No box can do this; load is shed by the cost measured, never for a stall of the loaded machine.
        budget={"cpu_budget": 0.001, "settle_seconds": 6.0, "max_hop_factor": 3, "max_lag": 60.0},
    )
    daemon = DaemonProcess(config, "--replay", str(data / "opso_great_plains_toad.wav"), "--speed", "4")
    assert daemon.wait_exit() == 0
    daemon.close()
    sheds = daemon.logged("load_shed")
    assert [s["load"] for s in sheds] == [
        "birdnet-v2.4,birdclef-tiny; no tta",
        "birdnet-v2.4; no tta",
        "birdnet-v2.4; no tta; hop x2",
        "birdnet-v2.4; no tta; hop x3",
    ]
    assert all(s["cost"] > s["budget"] == 0.001 for s in sheds)
    health = read_records(tmp_path / "data" / "records", "health")
    last = health[-1]
    assert last["load_level"] == 4 and last["load_changes"] == 4 and last["cpu_budget"] == 0.001
    assert set(last["member_ms_per_crop"]) == {"birdnet-v2.4", "birdclef-tiny"}
    latencies = [h["latency_p95_s"] for h in health if h["latency_p95_s"] is not None]
    assert latencies and max(latencies) < 5, "paced audio is timed from its arrival"
    events = read_records(tmp_path / "data" / "records")
    assert events, "a shed load still reports"


def test_a_member_the_schedule_holds_off_is_never_shed_nor_restored(data, tmp_path, models_dir, models_with_birdclef):
    recording = tmp_path / "20190522_120000Z.wav"  # noon at the box: the night member does not run
    shutil.copy(data / "opso_great_plains_toad.wav", recording)
    shutil.copytree(models_dir / "birdnet-v2.4-range", models_with_birdclef / "birdnet-v2.4-range")  # located box
    members = [
        {"name": "birdnet-v2.4", "priority": 1},
        {"name": "birdclef-tiny", "tta": [-0.5, 0.5], "active": "night"},
    ]
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": str(tmp_path / "unused")},
        models_dir=str(models_with_birdclef),
        model={"members": members},
        species={"latitude": 50.1, "longitude": 8.7, "range_threshold": 0.0},
        budget={"cpu_budget": 0.001, "settle_seconds": 6.0, "max_hop_factor": 3, "max_lag": 60.0},
    )
    daemon = DaemonProcess(config, "--replay", str(recording), "--speed", "4")
    code = daemon.wait_exit()
    daemon.close()
    assert code == 0, daemon.stderr_now()
    # birdclef-tiny's step and its TTA's would save nothing: the guard goes straight to a longer hop.
    assert [s["load"] for s in daemon.logged("load_shed")] == [
        "birdnet-v2.4; no tta; hop x2",
        "birdnet-v2.4; no tta; hop x3",
    ]
    assert not daemon.logged("load_restored")
    assert read_records(tmp_path / "data" / "records", "health")[-1]["load"] == "birdnet-v2.4; no tta; hop x3"


def test_file_input_is_paced_to_the_budget(data, tmp_path):
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "replay", "paths": [str(data / "maad_spinetail.wav")]},
        budget={"cpu_budget": 0.02},
    )
    began = time.monotonic()
    daemon = DaemonProcess(config)
    assert daemon.wait_exit() == 0
    daemon.close()
    ready = daemon.logged("daemon_ready")[0]
    ended = daemon.logged("loop_ended")[0]
    assert ready["cpu_budget"] == 0.02 and ended["audio_seconds"] == pytest.approx(19.5, abs=0.1)
    health = read_records(tmp_path / "data" / "records", "health")
    # Judged against the CPU this run itself measured, whatever the machine's speed or load: the budget
    # lets the analysis take 1/0.02 = 50 wall seconds per CPU second (less the guard's one second of credit
    # for idle time), and the analysis' own work takes a small part of that even on a loaded machine.
    cpu = health[-1]["cpu_cost"] * 19.5
    allowed = cpu / 0.02 - 1.0
    assert time.monotonic() - began >= allowed, "the analysis averaged at most the budget"
    assert health[-1]["paced_seconds"] >= 0.5 * allowed, "most of that time was spent waiting"
    assert health[-1]["load_level"] == 0 and not daemon.logged("load_shed"), "paced, never shed"
