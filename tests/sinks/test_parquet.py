"""The Parquet sink: one file per partition and run, partitions named from the detection's date and recorder,
safe folder names whatever the file names, a run written again replacing its file.

A replay writing Parquet end to end is in tests/app/test_replay_parquet.py."""

import sys
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from edge.sinks.files import file_sinks
from edge.sinks.parquet import ParquetSink, ParquetUnavailable, recorder_name, safe_value
from edge.sources.recording_time import recorder_of
from edge.types import Detection, Label, Stream, Window

SPINETAIL = Label("Cranioleuca erythrops", "Red-faced Spinetail", "Cranioleuca erythrops_Red-faced Spinetail")
MAY_22 = datetime(2019, 5, 22, 23, 59, 58, tzinfo=UTC)


def detection(stream_id, started=MAY_22, index=0, confidence=0.5):
    """The `index`-th 3 s window (hop 3 s) of a 48 kHz stream."""
    stream = Stream(stream_id, 48000, started)
    window = Window(stream, index, index * 144000, (index + 1) * 144000, {}, {})
    return Detection(window, SPINETAIL, confidence, "birdnet-v2.4", "2.4")


def files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_run_is_written_as_a_file_per_date_and_recorder(tmp_path):
    sink = ParquetSink(tmp_path, recorder_of=recorder_of)
    sink.emit(detection("site/S4A03895_20190522_235958.wav"))  # 23:59:58
    sink.emit(detection("site/S4A03895_20190522_235958.wav", index=1))  # starts at 00:00:01 the next day
    sink.emit(detection("moth/20190522_235958.WAV"))
    sink.emit(detection("dawn chorus.wav", started=None))
    sink.end_run()
    assert sink.rows == 4
    sink.write("run-000000")
    assert files(tmp_path) == [
        "date=2019-05-22/recorder=S4A03895/run-000000.parquet",
        "date=2019-05-22/recorder=moth/run-000000.parquet",
        "date=2019-05-23/recorder=S4A03895/run-000000.parquet",
        "date=unknown/recorder=unknown/run-000000.parquet",
    ]
    table = pq.read_table(tmp_path / "date=2019-05-23/recorder=S4A03895/run-000000.parquet")
    assert table.schema.names == list(ParquetSink(tmp_path).schema.names), "no partition column in the file"
    assert table.schema.field("start_utc").type == pa.timestamp("ms", tz="UTC")
    assert table.to_pylist() == [
        {
            "schema": "edge.detection/1",
            "source": "site/S4A03895_20190522_235958.wav",
            "start_s": 3.0,
            "end_s": 6.0,
            "start_utc": datetime(2019, 5, 23, 0, 0, 1, tzinfo=UTC),
            "end_utc": datetime(2019, 5, 23, 0, 0, 4, tzinfo=UTC),
            "scientific_name": "Cranioleuca erythrops",
            "common_name": "Red-faced Spinetail",
            "label": "Cranioleuca erythrops_Red-faced Spinetail",
            "confidence": 0.5,
            "model": "birdnet-v2.4",
            "model_version": "2.4",
        }
    ]
    unknown = pq.read_table(tmp_path / "date=unknown/recorder=unknown/run-000000.parquet").to_pylist()
    assert unknown[0]["start_utc"] is None and unknown[0]["end_utc"] is None


def test_ended_runs_are_written_as_a_batch_and_the_run_being_emitted_waits(tmp_path):
    sink = ParquetSink(tmp_path)
    sink.emit(detection("moth/20190522_235958.WAV", confidence=0.4))
    sink.end_run()
    sink.emit(detection("moth/20190522_235958.WAV", confidence=0.6))
    sink.end_run()
    sink.emit(detection("moth/20190522_235958.WAV", confidence=0.8))  # its run has not ended
    assert sink.rows == 2
    assert sink.write("part-000001") == [tmp_path / "date=2019-05-22/recorder=moth/part-000001.parquet"]
    assert sink.write("part-000002") == [], "nothing ended since: nothing written"
    assert files(tmp_path) == ["date=2019-05-22/recorder=moth/part-000001.parquet"]
    assert ds.dataset(tmp_path, partitioning="hive").to_table().column("confidence").to_pylist() == [0.4, 0.6]


def test_close_drops_what_was_not_written(tmp_path):
    """Rows not written belong to no committed run: the replay that analyses the run again writes them."""
    sink = ParquetSink(tmp_path)
    sink.emit(detection("moth/20190522_235958.WAV"))
    sink.end_run()
    sink.emit(detection("moth/20190522_235958.WAV", index=1))
    sink.close()
    assert not tmp_path.joinpath("date=2019-05-22").exists()


@pytest.mark.parametrize(
    ("stream_id", "recorder"),
    [
        ("../../x", "__"),  # the parent of ../../x is ..
        ("../../20190522_235958.WAV", "__"),
        ("Wald süd/Ecke Nord/20190522_235958.WAV", "Ecke_Nord"),
        ("x/S4A03895 ../20190522_235958.wav", "S4A03895_.."),
        ("x/../S4A0\u202e3895_20190522_235958.wav", "S4A0_3895"),
        ("a/\u0000/b.wav", "_"),
        ("a/" + "y" * 300 + "/b.wav", "y" * 100),
        ("/.../b.wav", "___"),
        ("b.wav", "unknown"),
    ],
)
def test_hostile_file_names_give_one_safe_folder(tmp_path, stream_id, recorder):
    sink = ParquetSink(tmp_path / "parquet", recorder_of=recorder_of)
    sink.emit(detection(stream_id))
    sink.end_run()
    sink.write("run-000000")
    (written,) = (tmp_path / "parquet").rglob("*.parquet")
    assert written.relative_to(tmp_path / "parquet").parts == (
        "date=2019-05-22",
        f"recorder={recorder}",
        "run-000000.parquet",
    )


def test_partition_values_are_never_empty_or_a_dot():
    assert [safe_value(v) for v in ("", ".", "..", "a b", "ü", "a=b/c")] == ["_", "_", "__", "a_b", "_", "a_b_c"]
    with pytest.raises(ValueError, match="plain name"):
        ParquetSink(__import__("pathlib").Path("unused")).write("../run")


def test_the_recorder_is_the_serial_else_the_folder_of_the_file(tmp_path):
    """An AudioMoth names files by time alone: its folder (the card's copy) tells it apart."""
    assert recorder_name("S4A03895_20190522_120000.wav", None, recorder_of) == "S4A03895"
    assert recorder_name("20190522_120000.WAV", tmp_path / "moth-07" / "20190522_120000.WAV", recorder_of) == "moth-07"
    assert recorder_name("20190522_120000.WAV", None, recorder_of) == "unknown"
    assert recorder_name("site/S4A03895_20190522_120000.wav", None, None) == "site", "no recorder_of: the folder"


def test_a_dataset_of_earlier_replays_is_removed_and_nothing_else(tmp_path):
    sink = ParquetSink(tmp_path / "parquet")
    sink.emit(detection("moth/20190522_235958.WAV"))
    sink.end_run()
    sink.write("part-000001")
    (tmp_path / "parquet" / "notes.txt").write_text("mine")
    for sink in file_sinks(tmp_path, ("jsonl",), append=False):
        sink.close()
    assert files(tmp_path / "parquet") == ["notes.txt"]


def test_without_pyarrow_the_format_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(ParquetUnavailable, match=r"pip install 'edge\[archive\]'"):
        file_sinks(tmp_path, ("parquet",))
