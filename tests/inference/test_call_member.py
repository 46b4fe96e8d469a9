"""The BatDetect2 call detector as a member of the ensemble, on a real bat recording: chunks tiling the stream
on the windows' grid, each run once, and a window scored by the calls in it; not run on a 48 kHz stream."""

import numpy as np
import pytest
import soundfile as sf
import soxr

from edge.audio.windower import WindowSpec
from edge.inference.call_member import CallMember, chunk_seconds
from edge.inference.ensemble import Ensemble
from edge.inference.manifest import load_manifest
from edge.inference.member import MemberOptions
from edge.inference.stages import Stages
from edge.types import Stream, Window
from support.paths import DATA

RATE = 256000
SEROTINE = "Eptesicus serotinus"


def test_chunks_are_the_hop_cut_into_parts_no_longer_than_the_detectors():
    assert [chunk_seconds(hop, 3.0) for hop in (2.5, 3.0, 1.0, 5.0, 6.5)] == [2.5, 3.0, 1.0, 2.5, 6.5 / 3]


@pytest.fixture(scope="module")
def bat_audio():
    """10 s at 256 kHz, silent but for a real serotine recording (0.5 s, 384 kHz) from 3.0 s."""
    audio, rate = sf.read(DATA / "bats" / "20180530_213516-EPTSER-LR_0_0.5.wav", dtype="float32")
    stream = np.zeros(10 * RATE, np.float32)
    bat = soxr.resample(audio, rate, RATE)
    stream[3 * RATE : 3 * RATE + len(bat)] = bat
    return stream


def windows_of(audio: np.ndarray, stream: Stream) -> list[Window]:
    """5 s windows every 2.5 s, as the windower makes them (the stream's own clock at 384 kHz)."""
    found = []
    for index, start in enumerate(range(0, len(audio) - 5 * RATE + 1, RATE * 5 // 2)):
        piece = audio[start : start + 5 * RATE]
        on_stream = start * stream.sample_rate // RATE
        found.append(Window(stream, index, on_stream, on_stream + 5 * stream.sample_rate, {RATE: piece}, {RATE: start}))
    return found


def test_each_chunk_runs_once_and_a_window_holds_the_calls_of_its_chunks(models_dir, bat_audio):
    stages = Stages()
    member = CallMember(load_manifest(models_dir / "batdetect2-uk"), MemberOptions(), WindowSpec(5.0, 2.5), stages)
    windows = windows_of(bat_audio, Stream("bats.wav", 384000))
    scores = member.score(windows[:2]) + member.score(windows[2:])
    # Chunks of 2.5 s at 0, 2.5, 5 and 7.5 s, each looked at once: the one holding the bats runs, the three of
    # digital silence are not run at all.
    assert stages.costs["member:batdetect2-uk"].calls == 1
    serotine = member.labels.index(next(label for label in member.labels if label.scientific_name == SEROTINE))
    chunk = bat_audio[int(2.5 * RATE) : 5 * RATE]
    chunk = chunk[: np.flatnonzero(chunk)[-1] + 1]  # run without its trailing digital silence
    alone = max(call.probabilities[serotine] for call in member.detector.calls(chunk))
    assert scores[0][serotine] == scores[1][serotine] == pytest.approx(alone), "both windows hold the 2.5 s chunk"
    heard = {member.labels[i].scientific_name for i in np.flatnonzero(scores[0] >= 0.5)}
    assert heard == {SEROTINE, "Pipistrellus pipistrellus"}, "the two species listed with the recording"
    assert not scores[2].any(), "5 to 10 s: silence, no call"


def test_a_stream_recorded_below_the_detectors_rate_is_not_given_to_it(models_dir, bat_audio, capsys):
    member = CallMember(load_manifest(models_dir / "batdetect2-uk"), MemberOptions(), WindowSpec(5.0, 2.5))
    ensemble = Ensemble([member])
    (scores, *_) = ensemble.score(windows_of(bat_audio, Stream("phone.wav", 48000)))
    assert not scores.probabilities.any()
    assert "member_not_run_at_this_rate" in capsys.readouterr().out
    assert ensemble.score(windows_of(bat_audio, Stream("moth.wav", 384000)))[0].probabilities.max() >= 0.3
