"""A full or read-only disk under the daily files, the outbox or the recording state: the box goes on, records
wait in memory (bounded, losses counted) and reach each store exactly once, in order, when the disk recovers."""

import json
import sqlite3

import pytest

from edge.sinks.daily import DailyFiles
from edge.sinks.outbox import Outbox
from edge.sinks.outputs import Outputs
from edge.sources.state import RecordingState
from support.disks import small_disk


def lines(folder, kind="events"):
    return [
        json.loads(line) for path in sorted((folder / kind).glob("*.jsonl")) for line in path.read_text().splitlines()
    ]


def event(n: int) -> dict:
    # More than a page of a tmpfs: on a full disk the part that fits in the last page is written, then refused.
    return {"id": f"e{n}", "kind": "start", "end_s": float(n), "common_name": "Eurasian Curlew " * 300}


def publish(outputs: Outputs, numbers) -> list[dict]:
    return [outputs.publish("events", event(n), key=f"e{n}") for n in numbers]


def queued(outbox: Outbox) -> list[int]:
    return [p.seq for p in outbox.pending(0, 10_000)]


def test_daily_files_on_a_full_disk_wait_in_memory_and_arrive_once_in_order(tmp_path):
    with small_disk(tmp_path / "card", 1024) as disk:
        files = DailyFiles(disk.path / "records")
        outputs = Outputs(Outbox(tmp_path / "outbox.sqlite"), files, None, retry_seconds=0)
        before = publish(outputs, range(3))
        disk.fill()
        during = publish(outputs, range(3, 40))
        stats = outputs.stats()
        assert [f["store"] for f in stats["storage_faults"]] == ["records"]
        assert "No space left on device (ENOSPC)" in stats["storage_faults"][0]["error"]
        assert stats["records_held"] == 37 and stats["records_lost"] == {"records": 0, "outbox": 0}
        assert [r["seq"] for r in lines(disk.path / "records")] == [1, 2, 3], "no torn or partial line"
        disk.free()
        after = publish(outputs, [40])
        written = lines(disk.path / "records")
        assert written == before + during + after, "every record once, in order, the held ones first"
        csv = (disk.path / "records" / "events" / f"{files.today()}.csv").read_text().splitlines()
        assert len(csv) == 1 + 41 and csv[0].startswith("schema,")
        assert outputs.stats()["storage_faults"] == []


def test_past_the_memory_bound_records_are_lost_and_counted_health_first(tmp_path):
    with small_disk(tmp_path / "card", 4096) as disk:
        outputs = Outputs(
            Outbox(tmp_path / "outbox.sqlite"), DailyFiles(disk.path / "records"), None, max_held=3, retry_seconds=0
        )
        disk.fill()
        first = publish(outputs, [0])
        outputs.publish("health", {"time_utc": "t"})
        rest = publish(outputs, range(1, 5))
        assert outputs.stats()["records_lost"] == {"records": 3, "outbox": 0}
        assert outputs.stats()["records_held"] == 3
        disk.free()
        publish(outputs, [5])
        assert [r["id"] for r in lines(disk.path / "records")] == ["e2", "e3", "e4", "e5"]
        assert lines(disk.path / "records", "health") == []
        assert first[0]["seq"] == 1 and rest[-1]["seq"] == 6


def test_an_outbox_on_a_read_only_disk_at_start_numbers_on_and_catches_up_once(tmp_path):
    with small_disk(tmp_path / "card", 1024) as disk:
        outbox = Outbox(disk.path / "outbox.sqlite")
        publish(Outputs(outbox, DailyFiles(tmp_path / "records"), None), range(2))
        outbox.close()
        disk.read_only()
        outbox = Outbox(disk.path / "outbox.sqlite")  # before: sqlite3.OperationalError, the daemon exits
        outputs = Outputs(outbox, DailyFiles(tmp_path / "records"), None, retry_seconds=0)
        held = publish(outputs, range(2, 6))
        assert publish(outputs, [1]) == [None], "keys committed before the disk turned read-only still count"
        assert [r["seq"] for r in held] == [3, 4, 5, 6]
        assert publish(outputs, [3]) == [None], "a key held in memory is published once too"
        fault = outputs.stats()["storage_faults"]
        assert [f["store"] for f in fault] == ["outbox"] and fault[0]["waiting"] == 4
        assert fault[0]["error"].endswith("; Read-only file system (EROFS)"), fault
        disk.writable()
        publish(outputs, [6])
        assert queued(outbox) == [1, 2, 3, 4, 5, 6, 7]
        assert [r["seq"] for r in lines(tmp_path / "records")] == [1, 2, 3, 4, 5, 6, 7]
        outbox.close()
        assert Outbox(disk.path / "outbox.sqlite").next_seq() == 8


def test_an_outbox_on_a_full_disk_holds_records_until_there_is_room(tmp_path):
    with small_disk(tmp_path / "card", 4096) as disk:
        outbox = Outbox(disk.path / "outbox.sqlite")
        outputs = Outputs(outbox, DailyFiles(tmp_path / "records"), None, retry_seconds=0)
        publish(outputs, range(2))
        disk.fill()
        publish(outputs, range(2, 60))
        fault = outputs.stats()["storage_faults"]
        assert [f["store"] for f in fault] == ["outbox"] and "SQLITE_FULL" in fault[0]["error"]
        assert [r["seq"] for r in lines(tmp_path / "records")] == list(range(1, 61)), "the files have them all"
        disk.free()
        publish(outputs, [60])
        assert queued(outbox) == list(range(1, 62))
        assert outputs.stats()["storage_faults"] == []


def test_recording_state_on_a_read_only_disk_is_kept_in_memory_then_saved(tmp_path):
    with small_disk(tmp_path / "card", 1024) as disk:
        state = RecordingState(disk.path / "state.sqlite")
        state.finish("old|1|1", "old.wav", "done", 10.0)
        state.close()
        disk.read_only()
        state = RecordingState(disk.path / "state.sqlite")  # before: sqlite3.OperationalError
        assert state.get("old|1|1").status == "done", "what was saved before is still known"
        assert state.begin("new|2|2", "new.wav") == 1
        state.finish("new|2|2", "new.wav", "done", 5.0)
        assert state.get("new|2|2").status == "done"
        assert state.fault.store == "state" and state.fault.waiting == 1
        assert "Read-only file system (EROFS)" in state.fault.error, state.fault
        disk.writable()
        state.save()
        assert state.fault is None
        state.close()
        with sqlite3.connect(disk.path / "state.sqlite") as db:
            rows = db.execute("SELECT key, status, attempts, audio_seconds FROM recordings ORDER BY key")
            assert rows.fetchall() == [("new|2|2", "done", 1, 5.0), ("old|1|1", "done", 0, 10.0)]


def test_a_record_the_disk_takes_only_part_of_is_cut_back(tmp_path):
    with small_disk(tmp_path / "card", 4096) as disk:
        files = DailyFiles(disk.path / "records", ("jsonl",))
        files.publish("events", event(0))
        disk.fill()
        path = disk.path / "records" / "events" / f"{files.today()}.jsonl"
        size = path.stat().st_size
        with pytest.raises(OSError):
            files.publish("events", {**event(1), "common_name": "x" * 8192})
        assert path.stat().st_size == size
