"""One microphone, birds and bats: real recordings put together as a bat detector at 384 kHz would hear them."""

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from support.paths import DATA

BAT_RECORDING = DATA / "bats" / "20180530_213516-EPTSER-LR_0_0.5.wav"
BATS = {"Eptesicus serotinus", "Pipistrellus pipistrellus"}  # listed with BAT_RECORDING
BATS_AT = 21  # seconds


def birds_then_bats(rate: int = 384000) -> np.ndarray:
    """25 s: the spinetail's 19.5 s of song from the start, the bats' 0.5 s from 21 s."""
    bird, bird_rate = sf.read(DATA / "maad_spinetail.wav", dtype="float32", always_2d=True)
    bat, bat_rate = sf.read(BAT_RECORDING, dtype="float32")
    audio = np.zeros(25 * rate, np.float32)
    song = soxr.resample(bird.mean(axis=1), bird_rate, rate)
    audio[: len(song)] = song
    bats = soxr.resample(bat, bat_rate, rate) if bat_rate != rate else bat
    audio[BATS_AT * rate : BATS_AT * rate + len(bats)] = bats
    return audio


def write_birds_then_bats(path: Path, rate: int = 384000) -> Path:
    sf.write(path, birds_then_bats(rate), rate, subtype="PCM_16")
    return path
