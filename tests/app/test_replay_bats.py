"""Birds and bats from one microphone: a real spinetail recording and a real bat recording in one 384 kHz file,
replayed with BirdNET (48 kHz) and BatDetect2 (256 kHz); at 48 kHz the same file holds no bats, and BatDetect2
is not run on it."""

import csv
import json

import pytest
import soundfile as sf
import soxr

from support.bats import BATS, birds_then_bats
from support.paths import DATA as data
from support.processes import edge_cli

MODELS = ("--model", "birdnet-v2.4", "--model", "batdetect2-uk")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """25 s: the spinetail's 19.5 s from the start, the bats' 0.5 s from 21 s; at 384 kHz and at 48 kHz."""
    folder = tmp_path_factory.mktemp("moth")
    audio = birds_then_bats(384000)
    sf.write(folder / "moth384.wav", audio, 384000, subtype="PCM_16")
    sf.write(folder / "moth48.wav", soxr.resample(audio, 384000, 48000), 48000, subtype="PCM_16")
    return folder


def replayed(path, out):
    result = edge_cli("replay", str(path), *MODELS, "--workers", "1", "--format", "jsonl", "--out", str(out))
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    return result, records


def test_birdnet_hears_the_birds_and_batdetect2_the_bats(recordings, tmp_path):
    _, records = replayed(recordings / "moth384.wav", tmp_path)
    bats = [r for r in records if r["scientific_name"] in BATS and r["confidence"] >= 0.5]
    birds = [r for r in records if r["scientific_name"].startswith("Cranioleuca") and r["confidence"] >= 0.5]
    assert {r["scientific_name"] for r in bats} == BATS
    assert all(r["start_s"] <= 21 < r["end_s"] for r in bats), "only the windows holding the bats' half second"
    assert birds and all(r["start_s"] < 19.5 for r in birds)
    assert {r["model"] for r in records} == {"birdnet-v2.4+batdetect2-uk"}


def test_a_48_khz_recording_is_not_given_to_the_bat_detector(recordings, tmp_path):
    result, records = replayed(recordings / "moth48.wav", tmp_path)
    assert not [r for r in records if r["scientific_name"] in BATS]
    assert any(r["scientific_name"].startswith("Cranioleuca") for r in records), "the birds are still heard"
    said = [line for line in result.stderr.splitlines() if "member_not_run_at_this_rate" in line]
    assert len(said) == 1, "once for the stream"
    assert all(f in said[0] for f in ("member=batdetect2-uk", "sample_rate=48000", "needs=96000"))


def test_a_time_expanded_recording_is_read_at_the_bats_own_rate(tmp_path):
    """A bat detector that plays its recordings ten times slower writes 384 kHz audio as 38.4 kHz: with
    --time-expansion 10 its bats are found, at their own times; without, it is too slow for BatDetect2."""
    audio, rate = sf.read(data / "bats" / "20180530_213516-EPTSER-LR_0_0.5.wav", dtype="float32")
    expanded = tmp_path / "expanded.wav"
    sf.write(expanded, audio, rate // 10, subtype="PCM_16")
    command = ("replay", str(expanded), "--model", "batdetect2-uk", "--workers", "1", "--format", "jsonl")
    edge_cli(*command, "--time-expansion", "10", "--out", str(tmp_path / "te"))
    records = [json.loads(line) for line in (tmp_path / "te" / "detections.jsonl").read_text().splitlines()]
    assert {r["scientific_name"] for r in records if r["confidence"] >= 0.5} == BATS
    assert {(r["start_s"], r["end_s"]) for r in records} == {(0.0, 5.0)}, "0.5 s of bats: the first window alone"
    result = edge_cli(*command, "--out", str(tmp_path / "real-time"))
    assert not (tmp_path / "real-time" / "detections.jsonl").read_text()
    assert "needs=96000" in result.stderr and "sample_rate=38400" in result.stderr


@pytest.mark.parametrize("clock, heard", [("120000", "birds"), ("230000", "bats")])
def test_birds_by_day_and_bats_by_night(recordings, tmp_path, clock, heard):
    """BirdNET by day, BatDetect2 by night, in London: the same audio recorded at noon and at 23:00 UTC."""
    moth = tmp_path / "moth" / f"20240601_{clock}.WAV"
    moth.parent.mkdir()
    moth.write_bytes((recordings / "moth384.wav").read_bytes())
    place = ("--lat", "51.5", "--lon", "-0.1", "--range-threshold", "0")
    models = ("--model", "birdnet-v2.4@day", "--model", "batdetect2-uk@night")
    edge_cli("replay", str(moth), *models, *place, "--workers", "1", "--format", "jsonl", "--out", str(tmp_path / "o"))
    records = [json.loads(line) for line in (tmp_path / "o" / "detections.jsonl").read_text().splitlines()]
    bats = {r["scientific_name"] for r in records} & BATS
    assert (bats == BATS) == (heard == "bats") and bool(bats) == (heard == "bats")
    assert {r["model"] for r in records} == {"birdnet-v2.4" if heard == "birds" else "batdetect2-uk"}


def test_the_call_table_holds_the_calls_listed_with_the_recordings(tmp_path):
    """`calls.csv`, in BatDetect2's columns: the replay finds every call BatDetect2 lists beside the three real
    recordings (44, at its README's 0.3), at the same times and with the same species."""
    edge_cli("replay", str(data / "bats"), "--model", "batdetect2-uk", "--workers", "1", "--out", str(tmp_path))
    with (tmp_path / "calls.csv").open() as f:
        rows = list(csv.DictReader(f))
    for listing in sorted((data / "bats").glob("*.wav.json")):
        listed = sorted(json.loads(listing.read_text())["annotation"], key=lambda call: call["start_time"])
        found = [row for row in rows if row["file"] == listing.name.removesuffix(".json")]
        assert len(found) == len(listed), listing.name
        for row, call in zip(found, listed, strict=True):
            assert abs(float(row["start_time"]) - call["start_time"]) <= 0.001
            # The end comes from the predicted duration, which soxr's resampling (BatDetect2's own is polyphase)
            # moves by up to 1.3 ms on these calls.
            assert abs(float(row["end_time"]) - call["end_time"]) <= 0.002
            assert (row["class"], abs(float(row["det_prob"]) - call["det_prob"]) <= 0.01) == (call["class"], True)
            assert float(row["low_freq"]) <= float(row["peak_freq"]) <= float(row["high_freq"])
    assert rows[0]["common_name"] and rows[0]["model"] == "batdetect2-uk"
