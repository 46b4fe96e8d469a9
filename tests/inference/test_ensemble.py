"""The ensemble's machinery: blending by scientific name, members declared with weights, time-shift TTA, a
front-end computed once for the members that share it, and the subsets the CPU budget guard runs."""

import numpy as np
import pytest

from edge.audio.windower import Windower, WindowSpec
from edge.inference.ensemble import MemberSpec, load_ensemble
from edge.inference.member import MemberOptions, flat_sigmoid
from edge.inference.stages import Stages
from edge.types import AudioChunk, Stream
from support.models import write_logmel_model, write_waveform_model


def windows_of(audio, rate, spec, rates):
    windower = Windower(spec, rates)
    stream = Stream("s", rate)
    return windower.push(AudioChunk(stream, 0, audio)) + windower.push(
        AudioChunk(stream, len(audio), np.zeros(0, np.float32), last=True)
    )


def expected_wave(crop):
    return flat_sigmoid(np.array([crop.max(), crop.mean(), crop.min()]), 1.0)


def test_tta_averages_shifted_variants_and_scores_each_crop_once(tmp_path, rng):
    write_waveform_model(tmp_path)  # 3 s crops at 16 kHz
    stages = Stages()
    ensemble = load_ensemble(
        tmp_path,
        [MemberSpec("wave-tiny", shifts=(-0.5, 0.5))],
        WindowSpec(5.0, 2.5),
        MemberOptions(crop_stride=1.0),
        stages,
    )
    audio = rng.uniform(-1, 1, 20 * 16000).astype(np.float32)
    windows = windows_of(audio, 16000, WindowSpec(5.0, 2.5), (16000,))
    scores = ensemble.score(windows)
    for window, got in zip(windows[:6], scores, strict=False):  # the first six
        start = window.start
        variants = []
        for shift in (0.0, -0.5, 0.5):
            # crops on the grid k + shift seconds that lie inside the window (the first one at least)
            ks = [k for k in range(-1, 21) if start <= (k + shift) * 16000 and (k + shift + 3) * 16000 <= start + 80000]
            crops = [audio[round((k + shift) * 16000) : round((k + shift) * 16000) + 48000] for k in ks]
            variants.append(np.max([expected_wave(c) for c in crops], axis=0))
        np.testing.assert_allclose(got.probabilities, np.mean(variants, axis=0), rtol=1e-5)
    # Every crop start on the 0.5 s grid was run once, however many windows held it.
    starts_needed = {
        round((k + s) * 16000)
        for w in windows
        for s in (0, -0.5, 0.5)
        for k in range(-1, 21)
        if w.start <= (k + s) * 16000 and (k + s + 3) * 16000 <= w.start + 80000
    }
    assert stages.costs["member:wave-tiny"].items <= len(starts_needed) + 2 * 3  # + padded tail crops
    # Without TTA, the same ensemble scores the unshifted grid only.
    plain = load_ensemble(tmp_path, [MemberSpec("wave-tiny")], WindowSpec(5.0, 2.5), MemberOptions())
    np.testing.assert_allclose(
        ensemble.score(windows, tta=False)[3].probabilities, plain.score(windows)[3].probabilities, rtol=1e-6
    )


def test_window_length_member_shifts_its_single_crop_with_zeros_beyond_the_window(tmp_path, rng):
    write_waveform_model(tmp_path, seconds=5.0)
    ensemble = load_ensemble(tmp_path, [MemberSpec("wave-tiny", shifts=(0.5,))], WindowSpec(5.0, 5.0), MemberOptions())
    audio = rng.uniform(0.1, 1, 10 * 16000).astype(np.float32)
    window = windows_of(audio, 16000, WindowSpec(5.0, 5.0), (16000,))[0]
    shifted = np.concatenate([audio[8000:80000], np.zeros(8000, np.float32)])
    expected = (expected_wave(audio[:80000]) + expected_wave(shifted)) / 2
    np.testing.assert_allclose(ensemble.score([window])[0].probabilities, expected, rtol=1e-5)


def test_members_sharing_a_front_end_compute_it_once(tmp_path, rng):
    write_logmel_model(tmp_path, name="frogs-a")
    write_logmel_model(tmp_path, name="frogs-b")
    write_logmel_model(tmp_path, name="frogs-c", sample_rate=22050)  # another rate: its own front-end
    stages = Stages()
    ensemble = load_ensemble(
        tmp_path,
        [MemberSpec("frogs-a"), MemberSpec("frogs-b"), MemberSpec("frogs-c")],
        WindowSpec(5.0, 2.5),
        MemberOptions(),
        stages,
    )
    audio = rng.normal(0, 0.1, 32000 * 12).astype(np.float32)
    windows = windows_of(audio, 32000, WindowSpec(5.0, 2.5), ensemble.sample_rates)
    ensemble.score(windows)
    n = len(windows)
    assert stages.costs["member:frogs-a"].items == stages.costs["member:frogs-b"].items == n
    assert stages.costs["frontend:logmel128x320@32000"].items == n, "one log-mel per crop for a and b"
    assert stages.costs["frontend:logmel128x320@22050"].items == n
    assert ensemble.members[0].front_end is ensemble.members[1].front_end


def test_weights_blend_probabilities_and_a_shed_member_takes_its_species_along(tmp_path, rng):
    write_waveform_model(tmp_path, name="wave-a")
    write_waveform_model(tmp_path, name="wave-b", sample_rate=22050)  # same three classes, other samples
    write_logmel_model(tmp_path, name="mel-c")  # 234 classes of its own
    window_spec = WindowSpec(5.0, 2.5)
    specs = [MemberSpec("wave-a", weight=3.0, priority=1), MemberSpec("wave-b"), MemberSpec("mel-c")]
    ensemble = load_ensemble(tmp_path, specs, window_spec, MemberOptions())
    audio = rng.uniform(-1, 1, 32000 * 6).astype(np.float32)
    windows = windows_of(audio, 32000, window_spec, ensemble.sample_rates)[:1]
    a, b, c = (member.score(windows)[0] for member in ensemble.members)
    assert not np.allclose(a, b)
    labels = [label.scientific_name for label in ensemble.taxonomy.labels]
    assert labels[:3] == ["Peak peak", "Mean mean", "Trough trough"] and len(labels) == 3 + 234
    blended = ensemble.score(windows)[0]
    np.testing.assert_allclose(blended.probabilities[:3], (3 * a + b) / 4, rtol=1e-5)
    np.testing.assert_allclose(blended.probabilities[3:], c, rtol=1e-5), "known to mel-c alone"
    only_a = ensemble.score(windows, active=[0])[0]
    np.testing.assert_allclose(only_a.probabilities[:3], a, rtol=1e-5)
    assert not only_a.probabilities[3:].any(), "no running member knows these"
    assert only_a.model == "wave-a" and blended.model == "wave-a+wave-b+mel-c"


def test_bad_shifts_are_refused(tmp_path):
    write_waveform_model(tmp_path)
    with pytest.raises(ValueError, match="TTA shifts"):
        load_ensemble(tmp_path, [MemberSpec("wave-tiny", shifts=(0.0,))], WindowSpec(5.0, 2.5), MemberOptions())
