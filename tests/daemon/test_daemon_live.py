"""`edge run` on a live microphone: a recording played into a private PulseAudio server's virtual microphone
gives the events that replaying the same file gives."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import soundfile as sf

from support.config import write_config
from support.paths import DATA
from support.processes import DaemonProcess
from support.pulse import pulse_server
from support.records import read_records

SPINETAIL = DATA / "maad_spinetail.wav"
# The live stream's window grid starts when the stream opened, not with the recording, and BirdNET is
# sensitive to where a song falls in its 3 s crop: over 60 random shifts of 0-2 s the spinetail scored 0.73-0.97
# on the default 1 s crop grid. A 0.25 s grid puts a crop within 0.125 s of wherever replay put one.
FINE_GRID = {"crop_stride": 0.25}
# Even on that grid, species near the threshold come and go with the offset: Boissonneaua flavescens scored
# 0.27-0.58 in single windows over eight offsets 1/32 s apart, and once reached 0.66 live. So replay covers the
# offsets a live grid can fall on, each within 1/64 s, over the same noise floor, and starts events at half
# the live threshold: a species heard live must be one the recording gives on some grid.
GRID_OFFSETS = [k / 32 for k in range(8)]
REPLAY_SMOOTHING = {"on": 0.25, "off": 0.2}


def best_by_species(records, threshold):
    best = {}
    for r in records:
        best[r["scientific_name"]] = max(best.get(r["scientific_name"], 0.0), r["confidence"])
    return {name: conf for name, conf in best.items() if conf >= threshold}


def hiss(samples: int, seed: int = 5) -> np.ndarray:
    """A microphone's self-noise (white, -60 dBFS): a real input is never digital zero, and BirdNET scores
    crops of pure zeros as birds (Tangara arthus 0.45)."""
    return (np.random.default_rng(seed).standard_normal(samples) * 1e-3).astype(np.float32)


def noise_floor(path, seconds=90.0, rate=48000):
    sf.write(str(path), hiss(int(seconds * rate)), rate)
    return path


def shifted_copies(folder, offsets):
    """The recording after 1 s + offset of the noise floor, with 3 s of it after the end, as the live test plays
    it: replaying these puts the crop grid where a live stream may have put it."""
    samples, rate = sf.read(str(SPINETAIL), dtype="float32")
    folder.mkdir()
    paths = []
    for n, offset in enumerate(offsets):
        lead = round((1.0 + offset) * rate)
        padded = np.concatenate([np.zeros(lead, np.float32), samples, np.zeros(3 * rate, np.float32)])
        paths.append(folder / f"spinetail_{n}.wav")
        sf.write(str(paths[-1]), padded + hiss(len(padded), seed=n), rate)
    return paths


def analysed_until(daemon: DaemonProcess, moment: datetime, timeout: float = 120.0) -> None:
    """Until a health record says the daemon has taken from the microphone all it had captured by `moment`
    (UTC): its time, less the audio still waiting in the microphone's buffer, is past `moment`."""

    def caught_up(entry: dict) -> bool:
        taken = datetime.fromisoformat(entry["time_utc"]) - timedelta(seconds=entry["queue_seconds"])
        return taken >= moment

    daemon.wait_for(
        lambda: any(caught_up(entry) for entry in daemon.logged("health")),
        timeout,
        "the analysis caught up with the microphone",
        poll=0.1,
    )


def test_live_microphone_events_match_replay(tmp_path):
    with pulse_server(tmp_path / "pulse") as pulse:
        floor_player = pulse.play(noise_floor(tmp_path / "hiss.wav"))
        config = write_config(
            tmp_path / "edge.toml",
            tmp_path / "live",
            {"type": "microphone", "device": "pulse", "sample_rate": 48000},
            model=FINE_GRID,
        )
        daemon = DaemonProcess(
            config,
            env={"PULSE_SERVER": pulse.env["PULSE_SERVER"], "PULSE_CLIENTCONFIG": pulse.env["PULSE_CLIENTCONFIG"]},
        )
        try:
            daemon.wait_notification("READY=1")
            daemon.wait_log("health", timeout=60)
            time.sleep(1.0)  # a second of the quiet before the recording, as on a box
            played_at = datetime.now(UTC)
            player = pulse.play(SPINETAIL)
            assert player.wait(timeout=60) == 0, player.stderr.read()
            time.sleep(3.0)  # the last window needs the audio after the recording's end
            analysed_until(daemon, datetime.now(UTC))  # and the analysis of it, however slow the machine
            code, seconds = daemon.terminate(timeout=60)
        finally:
            daemon.close()
            floor_player.kill()
    assert code == 0 and seconds < 30
    live = read_records(tmp_path / "live" / "records")
    assert live, "the live stream gives events"
    assert all(r["source"].startswith("mic:") for r in live)
    by_id = {}
    for r in live:
        by_id.setdefault(r["id"], []).append(r["kind"])
    assert all(kinds[-1] == "end" for kinds in by_id.values()), "SIGTERM ends the open events"

    paths = [SPINETAIL, *shifted_copies(tmp_path / "shifted", GRID_OFFSETS)]
    replay_config = write_config(
        tmp_path / "replay.toml",
        tmp_path / "replayed",
        {"type": "replay", "paths": [str(p) for p in paths]},
        model=FINE_GRID,
        smoothing=REPLAY_SMOOTHING,
    )
    replayed = DaemonProcess(replay_config)
    assert replayed.wait_exit() == 0
    replayed.close()
    replay = read_records(tmp_path / "replayed" / "records")
    assert {r["source"] for r in replay} == {p.name for p in paths}, "every shifted copy gives events"

    live_best = best_by_species(live, 0.5)
    replay_best = best_by_species([r for r in replay if r["source"] == SPINETAIL.name], 0.25)
    assert replay_best["Cranioleuca erythrops"] > 0.9
    assert abs(live_best["Cranioleuca erythrops"] - replay_best["Cranioleuca erythrops"]) < 0.25
    any_grid = best_by_species(replay, 0.25)
    assert set(live_best) <= set(any_grid), (live_best, any_grid)
    first = min((r for r in live if r["scientific_name"] == "Cranioleuca erythrops"), key=lambda r: r["start_s"])
    start = datetime.fromisoformat(first["start_utc"])
    assert abs(start - played_at) < timedelta(seconds=6), "UTC from the stream clock, anchored to the wall clock"
