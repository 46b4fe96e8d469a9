from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import soundfile as sf

from edge.sources.recording_time import from_comment, from_file_name, recording_start

UTC = UTC


def test_audiomoth_comment_from_real_header(data):
    comment = sf.SoundFile(str(data / "opso_audiomoth_metadata_15s.wav")).copy_metadata()["comment"]
    assert from_comment(comment) == datetime(2020, 4, 4, 10, 25, tzinfo=UTC)


def test_audiomoth_comment_with_offset():
    comment = "Recorded at 06:30:00 01/07/2023 (UTC+2) by AudioMoth 24A04F085CFD1AC6 at medium gain"
    assert from_comment(comment) == datetime(2023, 7, 1, 4, 30, tzinfo=UTC)
    assert from_comment("Recorded at 06:30:00 01/07/2023 (UTC-03:30) by") == datetime(2023, 7, 1, 10, 0, tzinfo=UTC)


def test_song_meter_and_audiomoth_names():
    assert from_file_name(Path("S4A03895_20190522_120000.wav")) == datetime(2019, 5, 22, 12, tzinfo=UTC)
    assert from_file_name(Path("20200404_102500.WAV")) == datetime(2020, 4, 4, 10, 25, tzinfo=UTC)
    assert from_file_name(Path("SMM01_20240101_235959_+0100.flac")) == datetime(2024, 1, 1, 22, 59, 59, tzinfo=UTC)
    assert from_file_name(Path("dawn chorus.wav")) is None
    assert from_file_name(Path("x_20191399_120000.wav")) is None, "no 13th month"


def test_names_without_zone_use_the_recorder_zone():
    berlin = ZoneInfo("Europe/Berlin")
    assert from_file_name(Path("S4A03895_20190522_120000.wav"), berlin) == datetime(2019, 5, 22, 10, tzinfo=UTC)


def test_header_wins_over_name(data):
    comment = "Recorded at 10:25:00 04/04/2020 (UTC) by AudioMoth"
    assert recording_start(Path("20990101_000000.wav"), comment) == datetime(2020, 4, 4, 10, 25, tzinfo=UTC)
