"""Compressed recordings cut short (a card pulled, a copy that stopped) or damaged inside, made from the real
recordings in tests/data: every sample that can be decoded is analysed, and the record says what was lost."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.sources.files import AudioError, DamagedAudio, decode
from support.paths import ROOT
from support.sources import analysed, make_source

RATE = 44100
PIECES = ("opso_great_plains_toad.wav", "maad_spinetail.wav", "kingParrot_cabin.wav")  # 81.4 s together


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """The three recordings as one FLAC and one MP3 (81.4 s), and the samples each decodes to whole."""
    folder = tmp_path_factory.mktemp("whole")
    audio = np.concatenate(
        [
            sf.read(str(ROOT / "tests" / "data" / name), dtype="float32", always_2d=True)[0].mean(axis=1)
            for name in PIECES
        ]
    )
    whole = {}
    for kind, options in (("flac", {"subtype": "PCM_16"}), ("mp3", {"format": "MP3"})):
        path = folder / f"whole.{kind}"
        sf.write(str(path), audio, RATE, **options)
        whole[kind] = (path, sf.read(str(path), dtype="float32")[0])
    return whole


def cut(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def decoded(path: Path) -> tuple[np.ndarray, str | None]:
    """The samples `decode` gives, and the damage it reports after them."""
    parts, damage = [], None
    try:
        for chunk in decode(path, path.name):
            parts.append(chunk.samples)
    except DamagedAudio as error:
        damage = str(error)
    return np.concatenate(parts), damage


def decodable(path: Path, block: int = 16) -> int:
    """Frames libsndfile decodes before its first error when read a few frames at a time: the last whole
    FLAC frame before the cut, less at most `block` (the read that meets the cut loses what it held)."""
    frames = 0
    with sf.SoundFile(str(path)) as f:
        while True:
            try:
                data = f.read(block, dtype="float32")
            except (sf.LibsndfileError, RuntimeError):
                return frames
            if len(data) == 0:
                return frames
            frames += len(data)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_a_cut_flac_gives_every_whole_frame_before_the_cut(recordings, tmp_path, fraction):
    path, whole = recordings["flac"]
    damaged = cut(path, tmp_path / "cut.flac", fraction)
    samples, damage = decoded(damaged)
    reachable = decodable(damaged)
    assert reachable - 64 <= len(samples) <= reachable + 4096, (len(samples) / RATE, reachable / RATE)
    assert np.array_equal(samples, whole[: len(samples)]), "the very samples of the whole file"
    assert damage == (
        f"FLAC stream cut off after {len(samples) / RATE:.1f} s of 81.4 s: analysed {len(samples) / RATE:.1f} s"
    )


def test_damage_inside_a_flac_is_skipped_as_silence_and_the_clock_kept(recordings, tmp_path):
    path, whole = recordings["flac"]
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(2000)
    (tmp_path / "damaged.flac").write_bytes(bytes(data))
    samples, damage = decoded(tmp_path / "damaged.flac")
    assert len(samples) == len(whole), "as long as the recording: what follows the damage keeps its time"
    silent = np.flatnonzero(samples != whole)
    assert len(silent) and np.all(samples[silent] == 0), "only the damaged stretch differs, and it is silence"
    assert (silent[-1] - silent[0]) / RATE < 1.5 and np.array_equal(samples[silent[-1] + 1 :], whole[silent[-1] + 1 :])
    assert damage.startswith(f"FLAC stream damaged: 1.0 s undecodable in 1 stretch(es) from {silent[0] / RATE:.1f} s")


def test_a_cut_mp3_is_analysed_up_to_the_cut_and_said_to_be_cut_off(recordings, tmp_path):
    path, whole = recordings["mp3"]
    samples, damage = decoded(path)
    assert damage is None and len(samples) == len(whole), "an intact MP3 is not reported"
    samples, damage = decoded(cut(path, tmp_path / "cut.mp3", 0.5))
    assert abs(len(samples) / RATE - 40.0) < 0.5
    assert (
        damage == f"MP3 stream ends after {len(samples) / RATE:.1f} s of the 81.4 s its header declares "
        f"(cut off): analysed {len(samples) / RATE:.1f} s"
    )


def test_a_flac_cut_soon_after_its_header_still_gives_what_it_holds(recordings, tmp_path):
    """Cut before the end of the first 20 s block: nothing was analysed, and the file was quarantined."""
    path, _ = recordings["flac"]
    source, inbox, state = make_source(tmp_path)
    cut(path, inbox / "cut.flac", 0.1)
    assert analysed(source, expected=1) == ["cut.flac"]
    note = (tmp_path / "quarantine" / "cut.flac.error.txt").read_text()
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        (seconds,) = db.execute("SELECT audio_seconds FROM recordings WHERE path = 'cut.flac'").fetchone()
    assert note == f"cut.flac: FLAC stream cut off after {seconds:.1f} s of 81.4 s: analysed {seconds:.1f} s\n"
    assert 7.5 < seconds < 8.2


def as_a_user(command: list[str]) -> list[str]:
    """`command` run without root's power to read any file (tests run as root in CI)."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]


FOLDER_WITH_A_LOCKED_FILE = textwrap.dedent("""
    import json, sys, threading, time
    from pathlib import Path
    from edge.sources.folder import FolderConfig, FolderSource
    from edge.sources.state import RecordingState

    tmp = Path(sys.argv[1])
    source = FolderSource(FolderConfig(path=tmp / "inbox", settle_seconds=0.2, rescan_seconds=0.5),
                          RecordingState(tmp / "state.sqlite"), tmp / "done", tmp / "quarantine")
    stop, finished, unlocked = threading.Event(), [], None
    deadline = time.monotonic() + 120
    source.start()
    for chunk in source.chunks(stop):
        if chunk is not None and chunk.last:
            finished.append(chunk.stream.id)
        if unlocked is None and "b_good.wav" in finished:
            unlocked = time.monotonic() + 2  # a few rescans, then the ranger fixes the permissions
        if unlocked is not None and time.monotonic() > unlocked:
            (tmp / "inbox" / "a_locked.wav").chmod(0o644)
        if "a_locked.wav" in finished or time.monotonic() > deadline:
            stop.set()
    source.stop()
    print(json.dumps({"finished": finished, "quarantined": sorted(p.name for p in (tmp / "quarantine").iterdir())}))
""")


def test_an_unreadable_file_says_permission_denied_and_waits_for_its_permissions(data, tmp_path):
    (tmp_path / "inbox").mkdir()
    shutil.copy(data / "curlew_call_1.wav", tmp_path / "inbox" / "a_locked.wav")
    shutil.copy(data / "curlew_call_1.wav", tmp_path / "inbox" / "b_good.wav")
    (tmp_path / "inbox" / "a_locked.wav").chmod(0)
    replay = [sys.executable, "-m", "edge", "replay", str(tmp_path / "inbox"), "--out", str(tmp_path / "out")]
    replayed = subprocess.run(as_a_user(replay), capture_output=True, text=True, cwd=ROOT, timeout=300)
    skipped = " ".join(replayed.stdout.split())
    assert "skipped a_locked.wav: permission denied" in skipped, replayed.stdout + replayed.stderr
    run = subprocess.run(
        as_a_user([sys.executable, "-c", FOLDER_WITH_A_LOCKED_FILE, str(tmp_path)]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    outcome = json.loads(run.stdout.splitlines()[-1])
    assert outcome == {"finished": ["b_good.wav", "a_locked.wav"], "quarantined": []}, run.stdout
    refusals = [line for line in run.stdout.splitlines() if "recording_unreadable" in line]
    assert len(refusals) >= 2 and all("permission denied" in line for line in refusals), run.stdout


def test_nothing_decodable_is_still_an_error_that_says_why(recordings, tmp_path):
    path, _ = recordings["flac"]
    with pytest.raises(AudioError, match="holds no audio samples: FLAC stream cut off after 0.0 s of 81.4 s"):
        decoded(cut(path, tmp_path / "header.flac", 0.001))
