"""`edge run` on a watched folder while the disk under its daily files fills up and turns read-only, and with
its data folder (outbox, recording state) read-only from the start: analysis goes on, health says what is
wrong, and when the disk recovers the records held in memory arrive in their store exactly once."""

import json
import shutil
import sqlite3

from edge.sinks.outbox import Outbox
from edge.sources.state import RecordingState
from support.broker import free_port
from support.config import write_config
from support.disks import small_disk
from support.processes import DaemonProcess, edge_cli
from support.records import read_records
from support.waiting import wait_for

RECORDING = "maad_spinetail.wav"  # a Red-faced Spinetail: events in every copy
FAST_FOLDER = {"settle_seconds": 1.5, "rescan_seconds": 2}
NO_BROKER = {"host": "127.0.0.1", "reconnect_max_seconds": 2}  # the uplink is down: the outbox keeps every record


def queued_events(outbox_path):
    with sqlite3.connect(f"file:{outbox_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT seq, payload FROM outbox WHERE kind = 'events' ORDER BY seq").fetchall()
    return [json.loads(payload) for _, payload in rows]


def fault_of(entry, store):
    return next((f for f in entry.get("storage_faults", []) if f["store"] == store), None)


def health_with_fault(daemon, store, words, start=0):
    """The first health log line, after the `start`-th line, whose fault for `store` says `words`."""

    def found():
        for entry in daemon.lines[start:]:
            fault = entry.get("event") == "health_storage_fault" and fault_of(entry, store)
            if fault and words in fault["error"]:
                return entry
        assert daemon.process.poll() is None, f"the daemon exited: {daemon.stderr_now()}"

    return wait_for(found, 180, f"a health record with a {store} fault saying {words!r}")


def drop(data, inbox, name):
    shutil.copy(data / RECORDING, inbox / f"{name}.tmp")
    (inbox / f"{name}.tmp").rename(inbox / name)


def test_daily_files_on_a_full_then_read_only_disk(data, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with small_disk(tmp_path / "card", 8192) as disk:
        config = write_config(
            tmp_path / "edge.toml",
            tmp_path / "data",
            {"type": "folder", "path": str(inbox), **FAST_FOLDER},
            output={"directory": str(disk.path / "records")},
            mqtt={**NO_BROKER, "port": free_port()},
            clips={"enabled": True, "directory": str(disk.path / "clips"), "min_free_percent": 0},
        )
        daemon = DaemonProcess(config)
        try:
            daemon.wait_notification("READY=1")
            drop(data, inbox, "a.wav")
            daemon.wait_log("recording_done", file="a.wav")
            disk.fill()  # before: the next record ends the daemon with [Errno 28], and systemd restarts it
            drop(data, inbox, "b.wav")
            daemon.wait_log("recording_done", file="b.wav")
            full = health_with_fault(daemon, "records", "No space left on device (ENOSPC)")
            assert full["records_held"] > 0 and full["disks"]["records"]["free_mb"] == 0, full["disks"]
            assert fault_of(full, "clips") is not None, "the clip of b.wav found no room either"
            disk.read_only()
            mark = len(daemon.lines)
            drop(data, inbox, "c.wav")
            daemon.wait_log("recording_done", file="c.wav")
            read_only = health_with_fault(daemon, "records", "Read-only file system (EROFS)", mark)
            assert read_only["records_lost"] == {"records": 0, "outbox": 0}
            held = read_only["records_held"]
            disk.writable()
            disk.free()
            recovered = daemon.wait_log("storage_recovered", timeout=180, store="records")
            mark = len(daemon.lines)
            drop(data, inbox, "d.wav")
            daemon.wait_log("recording_done", file="d.wav")
            wait_for(
                lambda: any(e.get("event") == "health" for e in daemon.lines[mark:]),
                120,
                "a health record without a fault",
            )
            code, _ = daemon.terminate()
        finally:
            daemon.close()
        written = read_records(disk.path / "records")
        clips = sorted(p.name for p in (disk.path / "clips").rglob("*.flac"))
    assert code == 0
    assert recovered["written"] >= held > 0, (recovered, held)
    queued = queued_events(tmp_path / "data" / "outbox.sqlite")
    assert {r["source"] for r in queued} == {"a.wav", "b.wav", "c.wav", "d.wav"}, "analysis went on"
    assert written == queued, "the daily files have every event once, in order, as the outbox has them"
    assert [r["seq"] for r in written] == sorted({r["seq"] for r in written})
    assert clips, "clips are written again once there is room"


def test_everything_on_one_full_disk(data, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with small_disk(tmp_path / "card", 8192) as disk:
        data_dir = disk.path / "data"
        config = write_config(
            tmp_path / "edge.toml",
            data_dir,
            {"type": "folder", "path": str(inbox), "after": "keep", **FAST_FOLDER},
            mqtt={**NO_BROKER, "port": free_port()},
        )
        daemon = DaemonProcess(config)
        try:
            daemon.wait_notification("READY=1")
            drop(data, inbox, "a.wav")
            daemon.wait_log("recording_done", file="a.wav")
            disk.fill()
            drop(data, inbox, "b.wav")
            daemon.wait_log("recording_done", file="b.wav")
            health_with_fault(daemon, "outbox", "SQLITE_FULL")
            # the daily files fill the room left in their last pages first (health records, every second)
            health_with_fault(daemon, "records", "No space left on device (ENOSPC)")
            disk.free()
            for store in ("records", "outbox"):
                daemon.wait_log("storage_recovered", timeout=180, store=store)
            code, _ = daemon.terminate()
        finally:
            daemon.close()
        written = read_records(data_dir / "records")
        queued = queued_events(data_dir / "outbox.sqlite")
        with sqlite3.connect(data_dir / "state.sqlite") as db:
            done = db.execute("SELECT path FROM recordings WHERE status = 'done' ORDER BY path").fetchall()
    assert code == 0
    assert {r["source"] for r in written} == {"a.wav", "b.wav"}
    assert written == queued, "each event once in each store, in order"
    assert done == [("a.wav",), ("b.wav",)]


def test_a_read_only_data_folder_at_start(data, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with small_disk(tmp_path / "card", 8192) as disk:
        data_dir = disk.path / "data"
        state = RecordingState(data_dir / "state.sqlite")  # a box that ran before its card turned read-only
        state.finish("old.wav|1|1", "old.wav", "done", 10.0)
        state.close()
        outbox = Outbox(data_dir / "outbox.sqlite")
        outbox.add("events", {"seq": 41}, "an-old-event")
        outbox.close()
        disk.read_only()
        config = write_config(
            tmp_path / "edge.toml",
            data_dir,
            {"type": "folder", "path": str(inbox), **FAST_FOLDER},
            output={"directory": str(tmp_path / "records")},
            mqtt={**NO_BROKER, "port": free_port()},
        )
        check = edge_cli("config", "check", str(config))  # a storage fault, not a bad configuration
        assert f"warning: data_dir: {data_dir} is not writable" in check.stderr, check.stderr
        daemon = DaemonProcess(config)
        try:
            # before: "sqlite3.OperationalError: unable to open database file" at every start
            daemon.wait_notification("READY=1")
            drop(data, inbox, "a.wav")
            daemon.wait_log("recording_done", file="a.wav")
            faulty = health_with_fault(daemon, "outbox", "Read-only file system (EROFS)")
            assert "Read-only file system (EROFS)" in fault_of(faulty, "state")["error"]
            assert faulty["disks"]["outbox"]["path"] == str(data_dir / "outbox.sqlite")
            disk.writable()
            daemon.wait_log("storage_recovered", timeout=180, store="outbox")
            daemon.wait_log("state_saved_again", timeout=180)
            code, _ = daemon.terminate()
        finally:
            daemon.close()
        queued = queued_events(data_dir / "outbox.sqlite")
        with sqlite3.connect(data_dir / "state.sqlite") as db:
            done = db.execute("SELECT path, status FROM recordings ORDER BY path").fetchall()
    assert code == 0
    written = read_records(tmp_path / "records")
    assert written and written[0]["seq"] == 42, "numbered on from the read-only outbox's counter"
    assert [r for r in queued if r.get("source") == "a.wav"] == written, "the held records reach the outbox once"
    assert ("a.wav", "done") in done and ("old.wav", "done") in done
