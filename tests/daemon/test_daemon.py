"""`edge run` as systemd runs it, on a temporary watched folder with real recordings dropped in."""

import os
import shutil
import signal
import sqlite3
import time
from collections import Counter

import pytest

from support.config import FAST_FOLDER, write_config
from support.processes import DaemonProcess
from support.records import SPINETAIL, comparable, read_records
from support.waiting import wait_for


def folder_config(tmp_path, **source):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return write_config(
        tmp_path / "edge.toml", tmp_path / "data", {"type": "folder", "path": str(inbox), **FAST_FOLDER, **source}
    ), inbox


def write_slowly(source, target, pieces=8, pause=0.25):
    """A recorder still writing: the file grows in pieces, its final header only at the end."""
    data = source.read_bytes()
    step = len(data) // pieces
    with target.open("wb") as f:
        for i in range(0, len(data), step):
            f.write(data[i : i + step])
            f.flush()
            time.sleep(pause)


def test_folder_daemon_end_to_end(data, tmp_path):
    config, inbox = folder_config(tmp_path)
    # Present at start-up, named out of order: analysed in recording-time order.
    shutil.copy(data / "S4A03895_20190522_120000.wav", inbox / "S4A03895_20190522_230000.wav")
    shutil.copy(data / "curlew_call_1.wav", inbox / "S4A03895_20190522_060000.wav")
    daemon = DaemonProcess(config)
    try:
        daemon.wait_notification("READY=1")
        daemon.wait_notification("WATCHDOG=1", timeout=10)
        daemon.wait_log("recording_done", file="S4A03895_20190522_230000.wav")
        shutil.copy(data / "maad_spinetail.wav", inbox / "copied.wav")
        writer_target = inbox / "site-b" / "20240501_053000.wav"
        writer_target.parent.mkdir()
        write_slowly(data / "maad_spinetail.wav", writer_target)
        (inbox / "notes.wav").write_text("field notes, not audio\n" * 40)
        whole = (data / "opso_birds_10s.wav").read_bytes()
        (inbox / "cut.wav").write_bytes(whole[: len(whole) // 3])
        for name in ("copied.wav", "site-b/20240501_053000.wav"):
            daemon.wait_log("recording_done", file=name)
        for name in ("notes.wav", "cut.wav"):
            daemon.wait_log("recording_quarantined", file=name)
        shutil.copy(data / "maad_spinetail.wav", inbox / "copied.wav")  # a recorder reusing a file name
        deadline = time.monotonic() + 120
        while len([e for e in daemon.logged("recording_done") if e["file"] == "copied.wav"]) < 2:
            assert time.monotonic() < deadline, "the second copied.wav was not analysed"
            time.sleep(0.2)
        health_records = len(daemon.logged("health"))
        wait_for(lambda: len(daemon.logged("health")) > health_records, 120, "a health record after the last file")
        code, seconds = daemon.terminate(timeout=60)
    finally:
        daemon.close()
    assert code == 0 and seconds < 30, (code, seconds)
    assert [e["file"] for e in daemon.logged("recording_started")][:2] == [
        "S4A03895_20190522_060000.wav",
        "S4A03895_20190522_230000.wav",
    ], "recording-time order"

    events = read_records(tmp_path / "data" / "records")
    copied = comparable(events, "copied.wav")
    assert copied[::2] == copied[1::2], "the same recording twice under one name: the same events, twice"
    copied = copied[::2]
    assert len({r["id"] for r in events if r["source"] == "copied.wav"}) == 2 * len(
        {r["id"] for r in events if r["source"] == "site-b/20240501_053000.wav"}
    ), "but other ids"
    assert copied, "the spinetail recording gives events"
    assert any(r[0] == "start" and r[1] == SPINETAIL and r[4] > 0.8 for r in copied)
    assert comparable(events, "site-b/20240501_053000.wav") == copied, (
        "a file analysed while still being written would give other (truncated) events"
    )
    by_id = {}
    for r in events:
        by_id.setdefault(r["id"], []).append(r["kind"])
    assert all(kinds[0] == "start" and kinds[-1] == "end" for kinds in by_id.values()), by_id
    assert events[0]["box"] == "test-box" and events[0]["schema"] == "edge.event/1"
    written = [r for r in events if r["source"] == "site-b/20240501_053000.wav"]
    assert written[0]["start_utc"] == "2024-05-01T05:30:00.000+00:00"

    quarantine = tmp_path / "data" / "quarantine"
    assert "not a readable audio file" in (quarantine / "notes.wav.error.txt").read_text()
    assert "truncated" in (quarantine / "cut.wav.error.txt").read_text()
    with sqlite3.connect(tmp_path / "data" / "state.sqlite") as db:
        (cut_seconds,) = db.execute("SELECT audio_seconds FROM recordings WHERE path = 'cut.wav'").fetchone()
    assert cut_seconds == pytest.approx(10.13 / 3, abs=0.05), "its readable third was analysed first"
    done = sorted(
        p.relative_to(tmp_path / "data" / "done").as_posix() for p in (tmp_path / "data" / "done").rglob("*.wav")
    )
    assert done == sorted(
        [
            "S4A03895_20190522_060000.wav",
            "S4A03895_20190522_230000.wav",
            "copied.wav",
            "copied-1.wav",
            "site-b/20240501_053000.wav",
        ]
    )
    assert not list(inbox.rglob("*.wav")), "every file was put away"

    health = read_records(tmp_path / "data" / "records", "health")
    assert health, "a health record every second"
    last = health[-1]
    for field in (
        "uptime_s",
        "audio_seconds",
        "real_time_factor",
        "files_pending",
        "input_overflows",
        "files_quarantined",
        "cpu_percent",
        "rss_mb",
        "disk_free_mb",
        "clock",
    ):
        assert field in last, field
    assert last["files_quarantined"] == 2 and last["audio_seconds"] > 49
    assert not [line for line in daemon.lines if line.get("event") == "non_json_output"]
    status = []
    while not daemon.notifications.empty():
        status.append(daemon.notifications.get())
    assert "STOPPING=1" in status


def test_burst_of_files_each_analysed_once(data, tmp_path):
    # A settle time far longer than moving 200 files takes, on any machine: the first scan finds them all ready.
    config, inbox = folder_config(tmp_path, after="delete", settle_seconds=5)
    daemon = DaemonProcess(config)
    n = 200
    try:
        daemon.wait_notification("READY=1")
        staging = tmp_path / "staging"
        staging.mkdir()
        for i in range(n):  # recorder names one minute apart, moved in at once as a card copy would be
            shutil.copy(data / "curlew_call_1.wav", staging / f"20240501_{5 + i // 60:02d}{i % 60:02d}00.wav")
        for path in sorted(staging.iterdir(), reverse=True):
            os.rename(path, inbox / path.name)
        done_so_far, last_progress = 0, time.monotonic()
        while done_so_far < n:  # fails only when no file is done for two minutes
            time.sleep(0.5)
            if len(daemon.logged("recording_done")) > done_so_far:
                done_so_far, last_progress = len(daemon.logged("recording_done")), time.monotonic()
            assert time.monotonic() - last_progress < 120, f"stuck after {done_so_far} of {n} files"
        code, _ = daemon.terminate(timeout=60)
    finally:
        daemon.close()
    assert code == 0
    done = [e["file"] for e in daemon.logged("recording_done")]
    assert len(done) == n and len(set(done)) == n
    assert done == sorted(done), "recording-time order within the burst"
    assert not list(inbox.iterdir())
    with sqlite3.connect(tmp_path / "data" / "state.sqlite") as db:
        assert db.execute("SELECT status, COUNT(*) FROM recordings GROUP BY status").fetchall() == [("done", n)]


def test_kill_9_and_restart_analyses_each_file_once(data, tmp_path):
    """SIGKILL mid-analysis: afterwards every file was finished exactly once and no event is missing.

    The kills come at points defined by progress, never by time: kill k once the record at k/5 of the
    reference's records is committed, so each run gets further than the one before on a CPU of any speed."""
    names = [
        "maad_spinetail.wav",
        "opso_birds_10s.wav",
        "pheasantCoucal_file0123.wav",
        "birdvox_warblr_fd79e55d_POSITIVE.wav",
        "opso_great_plains_toad.wav",
        "S4A03895_20190522_120000.wav",
    ]
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    for i, name in enumerate(names):
        shutil.copy(data / name, reference_dir / f"20240501_{i:02d}0000.wav")
    reference_config = write_config(
        tmp_path / "reference.toml", tmp_path / "reference-data", {"type": "replay", "paths": [str(reference_dir)]}
    )
    reference = DaemonProcess(reference_config)
    assert reference.wait_exit() == 0
    reference.close()
    reference_records = read_records(tmp_path / "reference-data" / "records")
    expected = comparable(reference_records)
    in_order = list(dict.fromkeys((r["id"], r["kind"]) for r in reference_records))
    kill_points = [in_order[len(in_order) * k // 5] for k in range(1, 5)]
    assert len(set(kill_points)) == 4, "enough records to kill four times"

    # A file may be cut off by several kills here; quarantine after repeated cuts is tested elsewhere.
    config, inbox = folder_config(tmp_path, max_attempts=10)
    for path in reference_dir.iterdir():  # the same files: same size and modification time
        shutil.copy2(path, inbox / path.name)
    records_dir = tmp_path / "data" / "records"
    for point in kill_points:
        daemon = DaemonProcess(config)
        try:
            daemon.wait_notification("READY=1")
            wait_for_record(records_dir, point, daemon)
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(timeout=10)
        finally:
            daemon.close()
        assert list(inbox.glob("*.wav")), "killed with files still to do"
    daemon = DaemonProcess(config)
    try:
        daemon.wait_notification("READY=1")
        while list(inbox.glob("*.wav")):
            daemon.wait_log("recording_done", timeout=120)
            time.sleep(0.2)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert code == 0
    records = read_records(records_dir)
    got_ids = {(r["id"], r["kind"]) for r in records}
    expected_ids = set(in_order)
    assert expected_ids <= got_ids, "nothing lost"
    assert got_ids == expected_ids, "repeats of a cut-off file carry the same ids"
    assert sorted(set(comparable(records))) == sorted(set(expected))
    with sqlite3.connect(tmp_path / "data" / "state.sqlite") as db:
        rows = db.execute("SELECT path, status FROM recordings").fetchall()
    assert sorted(rows) == sorted((f"20240501_{i:02d}0000.wav", "done") for i in range(len(names)))
    done = Counter(p.name for p in (tmp_path / "data" / "done").iterdir())
    assert done == Counter(f"20240501_{i:02d}0000.wav" for i in range(len(names))), "each put away once"


def wait_for_record(records_dir, key, daemon, timeout=300.0):
    """Until the record with this (id, kind) is committed to the daily files."""
    daemon.wait_for(
        lambda: key in {(r["id"], r["kind"]) for r in read_records(records_dir, complete_only=True)},
        timeout,
        f"record {key} committed",
        poll=0.01,
    )


def test_replay_paced_to_real_time(data, tmp_path):
    config = write_config(
        tmp_path / "edge.toml", tmp_path / "data", {"type": "folder", "path": str(tmp_path / "unused")}
    )
    began = time.monotonic()
    daemon = DaemonProcess(config, "--replay", str(data / "maad_spinetail.wav"), "--speed", "4")
    code = daemon.wait_exit()
    elapsed = time.monotonic() - began
    daemon.close()
    assert code == 0
    assert elapsed > 19.5 / 4, "19.5 s of audio delivered at 4x takes at least 4.9 s"
    paced = read_records(tmp_path / "data" / "records")
    fast_config = write_config(
        tmp_path / "fast.toml", tmp_path / "fast-data", {"type": "replay", "paths": [str(data / "maad_spinetail.wav")]}
    )
    fast = DaemonProcess(fast_config)
    assert fast.wait_exit() == 0
    fast.close()
    assert comparable(paced) == comparable(read_records(tmp_path / "fast-data" / "records")), (
        "pacing changes when audio arrives, never what is found"
    )


def test_sighup_reloads_what_it_can(data, tmp_path):
    config, inbox = folder_config(tmp_path)
    daemon = DaemonProcess(config)
    try:
        daemon.wait_notification("READY=1")
        text = config.read_text()
        config.write_text(text + "\n[smoothing]\non = 0.6\n\n[window]\nhop = 1.0\n")
        daemon.process.send_signal(signal.SIGHUP)
        reloaded = daemon.wait_log("config_reloaded", timeout=20)
        assert reloaded["applied"] == ["smoothing"] and reloaded["needs_restart"] == ["window"]
        daemon.wait_notification("RELOADING=1", timeout=5)
        config.write_text(text + "\n[smoothing]\non = 7\n")
        daemon.process.send_signal(signal.SIGHUP)
        failed = daemon.wait_log("reload_failed", timeout=20)
        assert "smoothing.on" in failed["error"]
        shutil.copy(data / "curlew_call_1.wav", inbox / "after-reload.wav")
        daemon.wait_log("recording_done", file="after-reload.wav", timeout=60)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert code == 0, "a bad reload keeps the running configuration"


@pytest.mark.parametrize(
    "problem, expected",
    [
        ({"settle_seconds": -1}, "source.settle_seconds"),
        ({"colour": "green"}, "source.colour"),
    ],
)
def test_bad_configuration_stops_start_up_with_its_option_named(tmp_path, problem, expected):
    config, _ = folder_config(tmp_path, **problem)
    daemon = DaemonProcess(config)
    code = daemon.wait_exit(timeout=60)
    stderr = daemon.process.stderr.read()
    daemon.close()
    assert code != 0
    assert expected in stderr and str(config) in stderr, stderr
