"""Birds and bats from one microphone: a real spinetail recording and a real bat recording in one 384 kHz file,
replayed with BirdNET (48 kHz) and BatDetect2 (256 kHz); at 48 kHz the same file holds no bats, and BatDetect2
is not run on it."""

import json

import numpy as np
import pytest
import soundfile as sf
import soxr

from support.paths import DATA as data
from support.processes import edge_cli

BATS = {"Eptesicus serotinus", "Pipistrellus pipistrellus"}  # listed with the bat recording
MODELS = ("--model", "birdnet-v2.4", "--model", "batdetect2-uk")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """25 s: the spinetail's 19.5 s from the start, the bats' 0.5 s from 21 s; at 384 kHz and at 48 kHz."""
    folder = tmp_path_factory.mktemp("moth")
    bird, bird_rate = sf.read(data / "maad_spinetail.wav", dtype="float32", always_2d=True)
    bat, bat_rate = sf.read(data / "bats" / "20180530_213516-EPTSER-LR_0_0.5.wav", dtype="float32")
    rate = 384000
    audio = np.zeros(25 * rate, np.float32)
    song = soxr.resample(bird.mean(axis=1), bird_rate, rate)
    audio[: len(song)] = song
    audio[21 * rate : 21 * rate + len(bat)] = bat
    sf.write(folder / "moth384.wav", audio, rate, subtype="PCM_16")
    sf.write(folder / "moth48.wav", soxr.resample(audio, rate, 48000), 48000, subtype="PCM_16")
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
