"""The daemon's field features on real recordings: no clip and no audio of a person on disk, the clip folder
within its quota over a long replay, common names in the box's language."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr

from support.config import write_config
from support.processes import DaemonProcess
from support.records import read_records

RATE = 44_100
SPEECH_AT = 25.0  # seconds into the mix
SPEECH_SECONDS = 7.0


def load(path, rate=RATE) -> np.ndarray:
    samples, source_rate = sf.read(path, dtype="float32", always_2d=True)
    samples = samples.mean(axis=1)
    return samples if source_rate == rate else soxr.resample(samples, source_rate, rate).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def forest_with_speech(data, path, with_speech=True):
    """Three copies of the Colombian spinetail recording (58.5 s); LibriSpeech speech at 0 dB against the
    forest, from 25 s to 32 s, inside the middle copy."""
    forest = np.concatenate([load(data / "maad_spinetail.wav")] * 3)
    if with_speech:
        speech = load(data / "3436-172162-0000.hq.ogg")[: int(SPEECH_SECONDS * RATE)]
        at = int(SPEECH_AT * RATE)
        part = forest[at : at + len(speech)]
        forest[at : at + len(speech)] = part + speech * (rms(part) / rms(speech))
    sf.write(path, np.clip(forest, -1, 1), RATE, subtype="PCM_16")
    return path


def replay(tmp_path, name, recording, **sections):
    data_dir = tmp_path / name
    config = write_config(
        tmp_path / f"{name}.toml", data_dir, {"type": "replay", "paths": [str(recording)]}, **sections
    )
    daemon = DaemonProcess(config)
    assert daemon.wait_exit(timeout=1800) == 0, daemon.stderr_now()  # ten minutes of audio, on a slow machine too
    daemon.close()
    return data_dir


def audio_files(folder) -> list:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            try:
                sf.info(path)
            except (sf.LibsndfileError, RuntimeError):
                continue
            found.append(path)
    return found


CLIPS = {"enabled": True, "pre_roll": 1.0, "post_roll": 1.0, "max_seconds": 30.0}


def test_speech_mixed_into_a_recording_leaves_no_clip_and_no_audio_on_disk(data, tmp_path):
    clean = replay(tmp_path, "clean", forest_with_speech(data, tmp_path / "clean.wav", with_speech=False), clips=CLIPS)
    talk = replay(tmp_path, "talk", forest_with_speech(data, tmp_path / "talk.wav"), clips=CLIPS)

    def overlaps_speech(event):
        """Does the event's clip span (its start less the pre-roll to its end, capped, plus the post-roll)?"""
        start = event["start_s"] - CLIPS["pre_roll"]
        end = min(event["end_s"], event["start_s"] + CLIPS["max_seconds"]) + CLIPS["post_roll"]
        return start < SPEECH_AT + SPEECH_SECONDS and end > SPEECH_AT

    clean_ends = [e for e in read_records(clean / "records") if e["kind"] == "end"]
    talk_ends = [e for e in read_records(talk / "records") if e["kind"] == "end"]
    assert any(overlaps_speech(e) and e["clip"] for e in clean_ends), "without speech, that event had a clip"
    assert any(overlaps_speech(e) for e in talk_ends)
    for event in talk_ends:
        assert (event["clip"] is None) == overlaps_speech(event), event
    # every audio file under the data folder is the clip of an event clear of speech
    clips = {talk / "clips" / e["clip"] for e in talk_ends if e["clip"]}
    assert clips and set(audio_files(talk)) == clips
    health = read_records(talk / "records", "health")[-1]
    assert 4 < health["speech_seconds"] <= SPEECH_SECONDS  # words, without the pauses between them
    assert health["clips_refused_speech"] >= 1 and health["windows_with_speech"] >= 2
    assert read_records(clean / "records", "health")[-1]["speech_seconds"] == 0


def test_detections_overlapping_speech_can_be_suppressed(data, tmp_path):
    talk = replay(
        tmp_path,
        "talk",
        forest_with_speech(data, tmp_path / "talk.wav"),
        privacy={"suppress_detections": True},
        smoothing={"end_after": 2.0},
    )
    events = read_records(talk / "records")
    health = read_records(talk / "records", "health")[-1]
    assert health["windows_suppressed_for_speech"] == health["windows_with_speech"] >= 2
    for event in events:
        assert not (event["start_s"] >= SPEECH_AT and event["end_s"] <= SPEECH_AT + SPEECH_SECONDS), event


LONG_MIX = [
    "opso_great_plains_toad.wav",
    "maad_spinetail.wav",
    "kingParrot_cabin.wav",
    "opso_birds_10s.wav",
    "birdvox_warblr_fd79e55d_POSITIVE.wav",
    "opso_rugr_drum.wav",
]


def test_clip_folder_stays_within_its_quota_over_a_long_replay(data, tmp_path):
    """Ten minutes of real recordings, clips on, a quota of 1 MB: after every clip the folder is within it,
    the oldest clips are the ones deleted, and the newest ones are still there."""
    part = np.concatenate([load(data / name) for name in LONG_MIX])
    recording = tmp_path / "long.flac"
    sf.write(recording, np.tile(part, int(np.ceil(600 * RATE / len(part)))), RATE, subtype="PCM_16")
    quota = 1.0
    data_dir = replay(
        tmp_path,
        "long",
        recording,
        language="es",
        health={"interval_seconds": 1},
        clips={**CLIPS, "max_seconds": 5.0, "max_megabytes": quota},
        smoothing={"end_after": 3.0},
    )
    ends = [e for e in read_records(data_dir / "records") if e["kind"] == "end" and e["clip"]]
    health = read_records(data_dir / "records", "health")
    assert health[-1]["audio_seconds"] >= 600 and len(ends) >= 20
    assert max(h.get("clips_bytes", 0) for h in health) <= quota * 1e6
    on_disk = sum(p.stat().st_size for p in (data_dir / "clips").rglob("*") if p.is_file())
    assert on_disk <= quota * 1e6 and on_disk == health[-1]["clips_bytes"]
    assert health[-1]["clips_deleted"] >= 10 and health[-1]["clips_written"] == len(ends)
    print(
        f"{health[-1]['audio_seconds']:.0f} s replayed: {len(ends)} clips written, "
        f"{health[-1]['clips_deleted']} deleted, largest folder {max(h.get('clips_bytes', 0) for h in health)} "
        f"bytes against a quota of {quota * 1e6:.0f}"
    )
    kept = [(data_dir / "clips" / e["clip"]).exists() for e in ends]
    assert kept[-1] and not kept[0] and kept == sorted(kept), "the oldest clips go first"
    # common names in Spanish, scientific names unchanged
    spinetail = next(e for e in ends if e["scientific_name"] == "Cranioleuca erythrops")
    assert spinetail["common_name"] == "Curutié Carirrojo"
