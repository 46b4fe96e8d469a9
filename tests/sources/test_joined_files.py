"""A recorder's consecutive files analysed as one stream, by `edge replay` and by the daemon."""

import json
import signal
from datetime import UTC, datetime, timedelta

import pytest
import soundfile as sf

from edge.sources.joins import StreamEnd
from edge.sources.recording_time import recorder_of
from edge.types import Stream
from support.audio import cut_recording
from support.config import write_config
from support.paths import DATA
from support.processes import DaemonProcess, edge_cli
from support.records import SPINETAIL, comparable, read_records
from support.waiting import wait_for


def detections(out):
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    return [(r["source"], r["scientific_name"], r["start_s"], r["end_s"], r["confidence"]) for r in records]


def every_event_ended(records_dir, source):
    """Every event has ended, those of `source` (the last file) included."""
    records = read_records(records_dir)
    ended = {r["id"] for r in records if r["kind"] == "end"}
    return {r["id"] for r in records} == ended and any(r["source"] == source for r in records)


CLIPS = {"enabled": True}


def clip_seconds(data_dir, records, source="20240501_060000.WAV"):
    """Each event's clip (species, start) and its length in seconds."""
    return {
        (r["scientific_name"], r["start_s"]): round(sf.info(data_dir / "clips" / r["clip"]).duration, 2)
        for r in records
        if r["kind"] == "end" and r["clip"] and r["source"] == source
    }


def without_source(found):
    return sorted(d[1:] for d in found)


def test_replay_of_consecutive_files_matches_the_uncut_recording(data, tmp_path):
    whole = tmp_path / "whole"
    audio, rate = cut_recording(data / "maad_spinetail.wav", tmp_path / "cut", names=())
    whole.mkdir()
    sf.write(whole / "20240501_060000.WAV", audio, rate, subtype="PCM_16")  # same 16-bit samples as the cut
    cut_recording(data / "maad_spinetail.wav", tmp_path / "cut")
    edge_cli("replay", str(whole), "--out", str(tmp_path / "out-whole"), "--quiet")
    edge_cli("replay", str(tmp_path / "cut"), "--out", str(tmp_path / "out-cut"), "--quiet")
    edge_cli("replay", str(tmp_path / "cut"), "--out", str(tmp_path / "out-apart"), "--quiet", "--join-gap", "off")
    uncut, joined, apart = (detections(tmp_path / o) for o in ("out-whole", "out-cut", "out-apart"))
    print(f"detections: uncut {len(uncut)}, cut and joined {len(joined)}, cut apart {len(apart)}")
    assert any(d[1] == "Cranioleuca erythrops" for d in uncut)
    assert joined == uncut, "one stream, named by its first file, times from its start"
    assert without_source(apart) != without_source(uncut), "apart, the windows at each cut are lost"


def test_replay_starts_a_new_stream_after_a_gap_or_a_change_of_rate(data, tmp_path):
    folder = tmp_path / "cut"
    audio, rate = cut_recording(data / "maad_spinetail.wav", folder, names=("20240501_060000.WAV",))
    sf.write(folder / "20240501_060007.WAV", audio[6 * rate : 12 * rate], rate, subtype="PCM_16")  # 1 s gap
    sf.write(folder / "20240501_060013.WAV", audio[6 * rate : 12 * rate], rate // 2, subtype="PCM_16")  # half rate
    edge_cli("replay", str(folder), "--out", str(tmp_path / "out"), "--quiet")
    found = detections(tmp_path / "out")
    sources = {d[0] for d in found}
    assert {"20240501_060007.WAV", "20240501_060013.WAV"} <= sources, "each a stream of its own"
    after_gap = [d for d in found if d[0] == "20240501_060007.WAV"]
    assert min(d[2] for d in after_gap) == 0.0, "its times count from its own start"


@pytest.fixture(scope="module")
def uncut(tmp_path_factory):
    """The daemon's records of the uncut recording (16-bit, as the cut files are), and its data folder."""
    folder = tmp_path_factory.mktemp("uncut")
    audio, rate = cut_recording(DATA / "maad_spinetail.wav", folder, names=())
    (folder / "whole").mkdir()
    sf.write(folder / "whole" / "20240501_060000.WAV", audio, rate, subtype="PCM_16")
    reference = DaemonProcess(
        write_config(
            folder / "reference.toml",
            folder / "data",
            {"type": "replay", "paths": [str(folder / "whole")]},
            clips=CLIPS,
        )
    )
    assert reference.wait_exit() == 0
    reference.close()
    return read_records(folder / "data" / "records"), folder / "data"


def test_daemon_analyses_consecutive_files_as_the_uncut_recording(data, tmp_path, uncut):
    inbox = tmp_path / "inbox"
    audio, rate = cut_recording(data / "maad_spinetail.wav", inbox)
    sf.write(inbox / "20240501_060030.WAV", audio[: 6 * rate], rate, subtype="PCM_16")  # after a 10.5 s gap
    reference_records, reference_data = uncut
    expected = comparable(reference_records)

    daemon = DaemonProcess(
        write_config(
            tmp_path / "edge.toml",
            tmp_path / "data",
            {"type": "folder", "path": str(inbox), "settle_seconds": 1.5},
            clips=CLIPS,
        )
    )
    try:
        daemon.wait_notification("READY=1")
        for name in ("20240501_060000.WAV", "20240501_060006.WAV", "20240501_060012.WAV", "20240501_060030.WAV"):
            daemon.wait_log("recording_done", file=name)
        wait_for(
            lambda: every_event_ended(tmp_path / "data" / "records", "20240501_060030.WAV"),
            120,
            "the end of every event",
        )
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert code == 0
    records = read_records(tmp_path / "data" / "records")
    joined = comparable(records, "20240501_060000.WAV")
    print(
        f"daemon event records: uncut {len(expected)}, cut {len(joined)} of the first stream, {len(records)} in all:",
        expected,
        comparable(records),
        "clips:",
        clip_seconds(tmp_path / "data", records),
    )
    assert SPINETAIL in {r[1] for r in expected}
    assert joined == expected, "the three files are the uncut recording"
    clips = clip_seconds(tmp_path / "data", records)
    assert clips == clip_seconds(reference_data, reference_records), "clips cut across the cuts"
    assert [e["file"] for e in daemon.logged("recording_joined")] == [
        str(inbox / "20240501_060006.WAV"),
        str(inbox / "20240501_060012.WAV"),
    ]
    alone = [r for r in records if r["source"] == "20240501_060030.WAV"]
    assert alone and min(r["start_s"] for r in alone) == 0.0, "after the gap, a stream of its own"
    assert sorted(p.name for p in (tmp_path / "data" / "done").iterdir()) == [
        "20240501_060000.WAV",
        "20240501_060006.WAV",
        "20240501_060012.WAV",
        "20240501_060030.WAV",
    ]


def test_a_file_whose_stream_end_waits_is_analysed_again_after_a_kill(data, tmp_path, uncut):
    """Killed after the first file was read, before its continuation arrived: its stream's last windows were
    never analysed, so the file is not finished; the next run analyses it again from its start (its events under
    the same ids, none published twice) and continues the stream through the next files."""
    inbox = tmp_path / "inbox"
    staging = inbox / ".staging"  # hidden: not watched; a file renamed out of it is complete at once
    cut_recording(data / "maad_spinetail.wav", staging)
    # A settle time far longer than the test holds the stream open for its continuation.
    config = write_config(
        tmp_path / "edge.toml", tmp_path / "data", {"type": "folder", "path": str(inbox), "settle_seconds": 600}
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_notification("READY=1")
        (staging / "20240501_060000.WAV").rename(inbox / "20240501_060000.WAV")
        daemon.wait_log("recording_read", file="20240501_060000.WAV")
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=10)
    finally:
        daemon.close()
    first_run = read_records(tmp_path / "data" / "records")
    daemon = DaemonProcess(config)
    try:
        daemon.wait_notification("READY=1")
        daemon.wait_log("recording_read", file="20240501_060000.WAV")
        for name in ("20240501_060006.WAV", "20240501_060012.WAV"):
            (staging / name).rename(inbox / name)
        daemon.wait_log("recording_read", file="20240501_060012.WAV")
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert code == 0
    assert [e["file"] for e in daemon.logged("recording_joined")] == [
        str(inbox / "20240501_060006.WAV"),
        str(inbox / "20240501_060012.WAV"),
    ]
    assert [e["file"] for e in daemon.logged("recording_done")] == ["20240501_060000.WAV", "20240501_060006.WAV"]
    records = read_records(tmp_path / "data" / "records")
    keys = [(r["id"], r["kind"]) for r in records]
    assert len(keys) == len(set(keys)), "no record repeated"
    assert {r["source"] for r in records} == {"20240501_060000.WAV"}, "one stream"
    assert {(r["id"], r["kind"]) for r in first_run} <= set(keys)
    held = [r for r in comparable(uncut[0]) if r[0] != "end"]  # the ends wait for the stream's last windows
    assert comparable(records) == held, "the uncut recording's records, across both cuts, each once"


def test_which_file_continues_a_stream():
    six = datetime(2024, 5, 1, 6, tzinfo=UTC)
    end = StreamEnd(recorder_of("site/S4A03895_20240501_060000.wav"), Stream("a", 24000, six), 1, 60 * 24000)

    def continues(name, seconds_after_six, rate=24000, channels=1):
        own = Stream("b", rate, six + timedelta(seconds=seconds_after_six))
        return end.continued_by(recorder_of(name), own, channels, 0.5)

    assert continues("site/S4A03895_20240501_060100.wav", 60)
    assert continues("site/S4A03895_20240501_060100.wav", 60.5) and continues("site/S4A03895_20240501_060100.wav", 59.5)
    assert not continues("site/S4A03895_20240501_060100.wav", 60.6), "a gap"
    assert not continues("site/S4A03895_20240501_060100.wav", 30), "out of order"
    assert not continues("site/S4A99999_20240501_060100.wav", 60), "another recorder"
    assert not continues("other/S4A03895_20240501_060100.wav", 60), "another folder"
    assert not continues("site/S4A03895_20240501_060100.wav", 60, rate=48000), "another rate"
    assert not continues("site/S4A03895_20240501_060100.wav", 60, channels=2), "another channel count"
    assert recorder_of("20240501_060000.WAV") == "./" and recorder_of("dawn chorus.wav") is None
