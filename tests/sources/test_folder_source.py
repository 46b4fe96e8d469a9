"""The watched folder in-process, on real files: what it takes, what it leaves, what it counts."""

import dataclasses
import shutil
import threading

import pytest

from edge.sinks.daily import DailyFiles
from support.sources import analysed, make_source


def test_hidden_folders_and_put_away_files_are_left_alone(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # done/ inside the watched folder, named by a relative path: what is moved there is not taken again.
    source, inbox, state = make_source(tmp_path, done_dir=inbox.relative_to(tmp_path) / "done")
    shutil.copy(data / "curlew_call_1.wav", inbox / "a.wav")
    (inbox / ".Trash-1000").mkdir()
    shutil.copy(data / "curlew_call_1.wav", inbox / ".Trash-1000" / "deleted.wav")
    shutil.copy(data / "curlew_call_1.wav", inbox / ".a.wav.partial.wav")
    assert analysed(source, expected=1, linger=2.0) == ["a.wav"]
    assert (inbox / "done" / "a.wav").exists() and (inbox / ".Trash-1000" / "deleted.wav").exists()
    assert (inbox / ".a.wav.partial.wav").exists()


def test_a_clean_stop_is_not_counted_as_a_cut_off_analysis(data, tmp_path):
    for _ in range(4):  # more stops than max_attempts
        source, inbox, state = make_source(tmp_path, max_attempts=3)
        if not (inbox / "long.wav").exists():
            shutil.copy(data / "opso_great_plains_toad.wav", inbox / "long.wav")
        source.decode_options = dataclasses.replace(source.decode_options, block_seconds=1.0)
        assert analysed(source, stop_after_chunks=3) == []
        state.close()
    source, inbox, state = make_source(tmp_path, max_attempts=3)
    assert analysed(source, expected=1) == ["long.wav"], "analysed, not quarantined"
    assert not (tmp_path / "quarantine" / "long.wav").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # watchdog re-adding watches of re-created folders
def test_vanishing_folders_during_a_rescan_do_not_stop_the_source(data, tmp_path):
    source, inbox, state = make_source(tmp_path)
    shutil.copy(data / "curlew_call_1.wav", inbox / "kept.wav")
    halt = threading.Event()

    def churn():
        while not halt.is_set():  # a sync tool making and removing temporary folders
            for i in range(20):
                (inbox / f"tmp{i}" / "deep").mkdir(parents=True, exist_ok=True)
            shutil.rmtree(inbox / "tmp0", ignore_errors=True)
            for i in range(20):
                shutil.rmtree(inbox / f"tmp{i}", ignore_errors=True)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        assert analysed(source, expected=1, linger=2.0) == ["kept.wav"]
    finally:
        halt.set()
        thread.join()


def test_a_torn_line_does_not_swallow_the_next_record(tmp_path):
    files = DailyFiles(tmp_path, ("jsonl",), fsync=False)
    files.publish("events", {"id": "a"})
    path = next((tmp_path / "events").glob("*.jsonl"))
    path.write_bytes(path.read_bytes() + b'{"id": "b", "conf')  # power cut in the middle of a write
    files.publish("events", {"id": "c"})
    lines = path.read_text().splitlines()
    assert lines[0] == '{"id": "a"}' and lines[-1] == '{"id": "c"}'


def test_kept_files_are_not_analysed_again_after_a_restart(data, tmp_path):
    source, inbox, state = make_source(tmp_path, after="keep")
    shutil.copy(data / "curlew_call_1.wav", inbox / "20240501_050000.wav")
    shutil.copy(data / "curlew_call_1.wav", inbox / "20240501_040000.wav")
    assert analysed(source, expected=2, linger=1.0) == ["20240501_040000.wav", "20240501_050000.wav"]
    state.close()
    source, inbox, state = make_source(tmp_path, after="keep")
    shutil.copy(data / "curlew_call_1.wav", inbox / "20240501_060000.wav")
    assert analysed(source, expected=1, linger=2.0) == ["20240501_060000.wav"], "only the new one"
    assert len(list(inbox.iterdir())) == 3, "all left in place"
