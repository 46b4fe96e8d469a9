"""Crops on an absolute grid, scored once, max-pooled per window; independent of chunk sizes."""

import numpy as np
import pytest

from edge.audio.windower import Windower, WindowSpec
from edge.inference.ensemble import Ensemble
from edge.inference.manifest import load_manifest
from edge.inference.member import Member, MemberOptions, flat_sigmoid
from edge.types import AudioChunk, Stream
from support.models import write_waveform_model


class CountingMember(Member):
    """The real member, counting the crops it sends to ONNX Runtime."""

    crops_scored = 0

    def _run(self, keys, crops):
        self.crops_scored += len(crops)
        return super()._run(keys, crops)


def windows_of(audio, rate, spec, chunk):
    windower = Windower(spec, (16000,))
    stream = Stream("s", rate)
    out = []
    for start in range(0, len(audio), chunk):
        out += windower.push(AudioChunk(stream, start, audio[start : start + chunk]))
    return out + windower.push(AudioChunk(stream, len(audio), np.zeros(0, np.float32), last=True))


@pytest.fixture
def manifest(tmp_path):
    return load_manifest(write_waveform_model(tmp_path))


def test_overlapping_windows_share_crops(manifest, rng):
    audio = rng.uniform(-1, 1, 20 * 16000).astype(np.float32)
    member = CountingMember(manifest, MemberOptions(crop_stride=1.0))
    windows = windows_of(audio, 16000, WindowSpec(5.0, 1.0), 4000)
    scores = [member.score([w])[0] for w in windows]
    # 5 s windows every 1 s hold crops k..k+2 (3 s crops on a 1 s grid). 20 s give 16 full windows and two
    # padded tail windows (4 s and 3 s of audio): 18 windows, crops 0..19, each scored once.
    assert len(windows) == 18 and member.crops_scored == 20
    for window, score in zip(windows, scores, strict=True):
        k = window.index
        crops = [audio[j * 16000 : j * 16000 + 48000] for j in range(k, k + 3) if j * 16000 + 48000 <= len(audio)]
        crops += [
            np.pad(audio[j * 16000 :], (0, 48000 - len(audio[j * 16000 :])))
            for j in range(k, k + 3)
            if j * 16000 + 48000 > len(audio)
        ]
        expected = np.max([[c.max(), c.mean(), c.min()] for c in crops], axis=0)
        np.testing.assert_allclose(score, flat_sigmoid(expected, 1.0), rtol=1e-5)


def test_scores_do_not_depend_on_chunk_size(manifest, rng):
    audio = rng.normal(0, 0.2, int(14.3 * 22050)).astype(np.float32)
    reference = None
    for chunk in (1024, 2048, 22050, len(audio)):
        ensemble = Ensemble([Member(manifest, MemberOptions(crop_stride=0.5))])
        scores = [s.probabilities for s in ensemble.score(windows_of(audio, 22050, WindowSpec(5.0, 2.5), chunk))]
        if reference is None:
            reference = scores
        assert len(scores) == len(reference)
        for a, b in zip(scores, reference, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_window_equal_to_input_is_one_crop(manifest, rng):
    audio = rng.uniform(-1, 1, 9 * 16000).astype(np.float32)
    member = CountingMember(manifest)
    windows = windows_of(audio, 16000, WindowSpec(3.0, 3.0), 16000)
    for w in windows:
        crop = audio[w.start : w.start + 48000]
        np.testing.assert_allclose(
            member.score([w])[0], flat_sigmoid(np.array([crop.max(), crop.mean(), crop.min()]), 1.0), rtol=1e-5
        )
    assert member.crops_scored == 3


def test_a_batch_of_windows_scores_like_one_at_a_time(manifest, rng):
    audio = rng.uniform(-1, 1, 20 * 16000).astype(np.float32)
    windows = windows_of(audio, 16000, WindowSpec(5.0, 1.0), 4000)
    one_by_one = CountingMember(manifest)
    batched = CountingMember(manifest)
    expected = [one_by_one.score([w])[0] for w in windows]
    got = batched.score(windows[:7]) + batched.score(windows[7:])
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-6)
    assert batched.crops_scored == one_by_one.crops_scored == 20


def test_sensitivity_follows_birdnet():
    logits = np.array([-2.0, 0.0, 2.0])
    assert flat_sigmoid(logits, 1.0) == pytest.approx(1 / (1 + np.exp(-logits)))
    # BirdNET-Analyzer: higher sensitivity flattens the curve, lifting low scores.
    assert flat_sigmoid(logits, 1.5)[0] > flat_sigmoid(logits, 1.0)[0]
    assert flat_sigmoid(np.array([40.0]), 1.0)[0] == pytest.approx(1 / (1 + np.exp(-15)))
