"""Labels as Raven, Audacity and a CSV write them, and detections as replay writes them; a bad row named."""

import json

import pytest

from edge.evaluation.detections import DetectionsError, read_detections
from edge.evaluation.labels import LabelError, read_labels
from edge.evaluation.matching import Span

RAVEN = (
    "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tSpecies\n"
    "1\tSpectrogram 1\t1\t1.035\t1.835\t0\t0\tLipaugus vociferans\n"
    "1\tWaveform 1\t1\t1.035\t1.835\t0\t0\tLipaugus vociferans\n"
    "2\tSpectrogram 1\t1\t7.675\t8.115\t0\t0\tGWWA\n"
)


def test_a_raven_table_labels_the_recording_it_is_named_after(tmp_path):
    (tmp_path / "ScreamingPiha2.Table.1.selections.txt").write_text(RAVEN)
    codes = {"GWWA": "Vermivora chrysoptera"}
    assert read_labels(tmp_path, lambda name: codes.get(name, name)) == [
        Span("ScreamingPiha2", 1.035, 1.835, "Lipaugus vociferans"),
        Span("ScreamingPiha2", 7.675, 8.115, "Vermivora chrysoptera"),
    ], "a selection once, though Raven lists it per view"


def test_a_raven_box_keeps_its_band_when_it_has_one(tmp_path):
    (tmp_path / "dawn.Table.1.selections.txt").write_text(
        RAVEN.replace("1.035\t1.835\t0\t0", "1.035\t1.835\t2500\t4200").replace("8.115\t0\t0", "8.115\t900\t900")
    )
    first, second = read_labels(tmp_path)
    assert (first.low_hz, first.high_hz) == (2500.0, 4200.0)
    assert (second.low_hz, second.high_hz) == (None, None), "no band: 0 Hz high"


def test_audacity_labels_and_a_csv(tmp_path):
    (tmp_path / "dawn.txt").write_text("0.5\t2.25\tTurdus merula\n\\\t1000\t4000\n3\t4\tErithacus rubecula\n")
    (tmp_path / "more.csv").write_text("File,Start,End,Species\nsite/dusk.wav,1,2.5,Strix aluco\n")
    assert read_labels(tmp_path) == [
        Span("dawn", 0.5, 2.25, "Turdus merula"),
        Span("dawn", 3.0, 4.0, "Erithacus rubecula"),
        Span("dusk", 1.0, 2.5, "Strix aluco"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("File,Start,End,Species\na.wav,one,2,X\n", "line 2: start and end must be seconds"),
        ("File,Start,End,Species\na.wav,3,2,X\n", "line 2: 3.0 to 2.0 s is not a stretch"),
        ("File,Start,End,Species\na.wav,nan,2,X\n", "line 2: nan to 2.0 s"),
        ("File,Start,End,Species\na.wav,1,2,\n", "line 2: no species"),
        ("File,Begin,Species\na.wav,1,X\n", "the columns must include end, file, species, start"),
    ],
)
def test_a_row_that_cannot_be_read_is_named(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(LabelError, match=message):
        read_labels(path)


def test_replay_records_and_event_ends_are_detections(tmp_path):
    record = {"source": "site/ScreamingPiha2.mp3", "start_s": 3.0, "end_s": 6.0, "confidence": 0.8}
    lines = [
        {**record, "scientific_name": "Lipaugus vociferans"},
        {**record, "scientific_name": "Lipaugus vociferans", "kind": "start"},
        {**record, "scientific_name": "Strix aluco", "kind": "end", "end_s": 9.0},
    ]
    (tmp_path / "detections.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert read_detections(tmp_path) == [
        Span("ScreamingPiha2", 3.0, 6.0, "Lipaugus vociferans", 0.8),
        Span("ScreamingPiha2", 3.0, 9.0, "Strix aluco", 0.8),
    ]
    (tmp_path / "detections.jsonl").write_text('{"source": "a.wav"}\n')
    with pytest.raises(DetectionsError, match="line 1: not a detection record"):
        read_detections(tmp_path)
