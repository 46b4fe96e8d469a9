"""Runs: the stretches of a replay's file list that a worker can analyse apart from the rest."""

import numpy as np
import soundfile as sf

from edge.sources.files import DecodeOptions, FileSource, list_recordings
from edge.sources.runs import joined_runs


def write(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        sf.write(folder / name, np.zeros(8000, np.float32), 8000)


def runs_of(folder, options=None):
    options = options or DecodeOptions()
    return [[stream_id for _, stream_id in run.recordings] for run in joined_runs(list_recordings([folder]), options)]


def test_a_run_holds_a_recorders_files_until_another_recorder_comes(tmp_path):
    write(tmp_path / "moth", "20240501_060000.WAV", "20240501_060001.WAV", "20240501_060010.WAV")
    write(tmp_path, "S4A03895_20240501_060005.wav", "S4A03895_20240501_060006.wav", "no_time.wav")
    assert runs_of(tmp_path) == [
        ["moth/20240501_060000.WAV", "moth/20240501_060001.WAV"],
        ["S4A03895_20240501_060005.wav", "S4A03895_20240501_060006.wav"],
        ["moth/20240501_060010.WAV"],
        ["no_time.wav"],
    ]


def test_a_file_that_cannot_be_opened_stays_in_the_run_it_falls_in(tmp_path):
    """One process would join the moth's files across it: it begins no stream, so it ends none."""
    write(tmp_path / "moth", "20240501_060000.WAV", "20240501_060001.WAV")
    (tmp_path / "S4A03895_20240501_060001.wav").write_bytes(b"not audio")
    assert runs_of(tmp_path) == [
        ["moth/20240501_060000.WAV", "S4A03895_20240501_060001.wav", "moth/20240501_060001.WAV"]
    ]
    assert {chunk.stream.id for chunk in FileSource([tmp_path]).chunks()} == {"moth/20240501_060000.WAV"}


def test_without_joining_every_file_is_a_run(tmp_path):
    write(tmp_path, "20240501_060000.WAV", "20240501_060001.WAV")
    assert runs_of(tmp_path, DecodeOptions(join_gap=None)) == [["20240501_060000.WAV"], ["20240501_060001.WAV"]]
