"""`edge run` on a live microphone: a recording played into a private PulseAudio server's virtual microphone
gives the events that replaying the same file gives."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import soundfile as sf

from conftest import DATA
from daemon_process import DaemonProcess, read_records, write_config
from pulse import pulse_server

SPINETAIL = DATA / "maad_spinetail.wav"
# The live stream's window grid starts when the stream opened, not with the recording, and BirdNET is
# sensitive to where a song falls in its 3 s crop: over 60 random shifts of 0-2 s the spinetail scored 0.73-0.97
# on the default 1 s crop grid. A 0.25 s grid puts a crop within 0.125 s of wherever replay put one.
FINE_GRID = {"crop_stride": 0.25}


def best_by_species(records, threshold):
    best = {}
    for r in records:
        best[r["scientific_name"]] = max(best.get(r["scientific_name"], 0.0), r["confidence"])
    return {name: conf for name, conf in best.items() if conf >= threshold}


def noise_floor(path, seconds=90.0, rate=48000):
    """A microphone's self-noise (white, -60 dBFS): a real input is never digital zero, and BirdNET scores
    crops of pure zeros as birds (Tangara arthus 0.45)."""
    rng = np.random.default_rng(5)
    sf.write(str(path), (rng.standard_normal(int(seconds * rate)) * 1e-3).astype(np.float32), rate)
    return path


def test_live_microphone_events_match_replay(tmp_path):
    with pulse_server(tmp_path / "pulse") as pulse:
        hiss = pulse.play(noise_floor(tmp_path / "hiss.wav"))
        config = write_config(tmp_path / "edge.toml", tmp_path / "live",
                              {"type": "microphone", "device": "pulse", "sample_rate": 48000}, model=FINE_GRID)
        daemon = DaemonProcess(config, env={"PULSE_SERVER": pulse.env["PULSE_SERVER"],
                                            "PULSE_CLIENTCONFIG": pulse.env["PULSE_CLIENTCONFIG"]})
        try:
            daemon.wait_notification("READY=1")
            daemon.wait_log("health", timeout=20)
            time.sleep(1.0)  # a second of the quiet before the recording, as on a box
            played_at = datetime.now(timezone.utc)
            player = pulse.play(SPINETAIL)
            assert player.wait(timeout=60) == 0, player.stderr.read()
            time.sleep(3.0)  # the last window needs the audio after the recording's end
            code, seconds = daemon.terminate()
        finally:
            daemon.close()
            hiss.kill()
    assert code == 0 and seconds < 10
    live = read_records(tmp_path / "live" / "records")
    assert live, "the live stream gives events"
    assert all(r["source"].startswith("mic:") for r in live)
    by_id = {}
    for r in live:
        by_id.setdefault(r["id"], []).append(r["kind"])
    assert all(kinds[-1] == "end" for kinds in by_id.values()), "SIGTERM ends the open events"

    replay_config = write_config(tmp_path / "replay.toml", tmp_path / "replayed",
                                 {"type": "replay", "paths": [str(SPINETAIL)]}, model=FINE_GRID)
    replayed = DaemonProcess(replay_config)
    assert replayed.wait_exit() == 0
    replayed.close()
    replay = read_records(tmp_path / "replayed" / "records")

    live_best, replay_best = best_by_species(live, 0.5), best_by_species(replay, 0.25)
    assert replay_best["Cranioleuca erythrops"] > 0.9
    assert abs(live_best["Cranioleuca erythrops"] - replay_best["Cranioleuca erythrops"]) < 0.25
    assert set(live_best) <= set(replay_best), (live_best, replay_best)
    first = min((r for r in live if r["scientific_name"] == "Cranioleuca erythrops"), key=lambda r: r["start_s"])
    start = datetime.fromisoformat(first["start_utc"])
    assert abs(start - played_at) < timedelta(seconds=6), "UTC from the stream clock, anchored to the wall clock"
