"""A BirdCLEF-style model (5 s at 32 kHz, 128-mel input, 234 classes) is added by dropping in a directory."""

import json
import shutil

import librosa
import numpy as np
import pytest
import soundfile as sf

from edge.inference.frontend import LogMelFrontEnd, mel_filterbank
from edge.inference.manifest import LogMelSpec, ModelError, discover, load_manifest
from support.models import LOGMEL
from support.processes import edge_cli


def test_logmel_matches_librosa(data):
    audio, rate = sf.read(str(data / "opso_birds_10s.wav"), dtype="float32")
    crop = audio[: 5 * rate]
    spec = LogMelSpec(**{**LOGMEL, "normalise": "none"})
    ours = LogMelFrontEnd(spec, rate)(crop[None])[0, 0]
    power = librosa.feature.melspectrogram(
        y=crop,
        sr=rate,
        n_fft=1024,
        hop_length=320,
        n_mels=128,
        fmin=50,
        fmax=14000,
        htk=True,
        norm=None,
        center=True,
        pad_mode="reflect",
    )
    theirs = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_slaney_filters_match_librosa():
    spec = LogMelSpec(n_fft=2048, hop_length=512, n_mels=64, fmin=0, fmax=16000, mel_scale="slaney", mel_norm="slaney")
    theirs = librosa.filters.mel(sr=32000, n_fft=2048, n_mels=64, fmin=0, fmax=16000, htk=False, norm="slaney")
    np.testing.assert_allclose(mel_filterbank(spec, 32000), theirs.T, atol=1e-6)


def test_dropped_in_model_is_listed(models_with_birdclef):
    names = [m.name for m in discover(models_with_birdclef)]
    assert names == ["birdclef-tiny", "birdnet-v2.4"]
    result = edge_cli("models", "--models-dir", str(models_with_birdclef))
    assert "birdclef-tiny" in result.stdout and "logmel 5 s @ 32000 Hz" in result.stdout
    assert "234" in result.stdout


def test_dropped_in_model_replays(models_with_birdclef, tmp_path):
    """A tone at the centre of mel band 60 lights up class 60, in every window."""
    centre = librosa.mel_frequencies(n_mels=130, fmin=50, fmax=14000, htk=True)[1:-1][60]
    rate = 44100
    t = np.arange(12 * rate) / rate
    sf.write(str(tmp_path / "tone.wav"), 0.3 * np.sin(2 * np.pi * centre * t), rate)
    edge_cli(
        "replay",
        str(tmp_path / "tone.wav"),
        "--model",
        "birdclef-tiny",
        "--models-dir",
        str(models_with_birdclef),
        "--out",
        str(tmp_path / "out"),
        "--min-conf",
        "0.5",
        "--top-k",
        "1",
    )
    records = [json.loads(x) for x in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    assert [r["start_s"] for r in records] == [0.0, 2.5, 5.0, 7.5], "the last window holds 4.5 s, padded"
    assert {r["scientific_name"] for r in records} == {"Tonus band060"}
    assert {r["model"] for r in records} == {"birdclef-tiny"}


def test_checksum_mismatch_is_reported(models_with_birdclef):
    with (models_with_birdclef / "birdclef-tiny" / "model.onnx").open("ab") as f:
        f.write(b"\0")
    result = edge_cli("models", "--models-dir", str(models_with_birdclef), check=False)
    assert result.returncode != 0 and "MISMATCH" in result.stdout


def test_every_kind_of_model_file_is_checked_at_load_in_the_same_words(tmp_path, models_dir):
    """The classifier's file too, as the member loads it, not only where a command remembers to verify it."""
    from edge.inference.member import Member
    from edge.inference.names import NAMES_DIR, CommonNames
    from edge.screen.range_model import RangeModel
    from edge.screen.speech import SpeechModel
    from support.models import write_waveform_model

    classifier = load_manifest(write_waveform_model(tmp_path / "classifiers"))
    for folder, manifest in (
        ("birdnet-v2.4-range", "range.toml"),
        ("silero-vad", "speech.toml"),
        (NAMES_DIR, "names.toml"),
    ):
        (tmp_path / folder).mkdir()
        for name in ("labels.txt", manifest, "pt_BR.txt", "model.onnx"):
            if (models_dir / folder / name).is_file():
                shutil.copyfile(models_dir / folder / name, tmp_path / folder / name)
    for damaged in (classifier.path, tmp_path / "silero-vad" / "model.onnx", tmp_path / NAMES_DIR / "pt_BR.txt"):
        with damaged.open("ab") as f:
            f.write(b"\0")
    (tmp_path / "birdnet-v2.4-range" / "model.onnx").write_bytes(b"not the model")
    loads = (
        ("model.onnx", "manifest.toml", lambda: Member(classifier)),
        ("model.onnx", "range.toml", lambda: RangeModel.load(tmp_path)),
        ("model.onnx", "speech.toml", lambda: SpeechModel.load(tmp_path)),
        ("pt_BR.txt", "names.toml", lambda: CommonNames.load(tmp_path, "pt_BR")),
    )
    for file, manifest, load in loads:
        with pytest.raises(
            ModelError,
            match=rf"{file}: sha256 [0-9a-f]{{16}}\.\.\. differs from {manifest} "
            rf"\([0-9a-f]{{16}}\.\.\.\): damaged or replaced; reinstall edge",
        ):
            load()


def test_broken_manifest_names_the_file(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.toml").write_text('name = "m"\n')
    with pytest.raises(ModelError, match="manifest.toml: invalid manifest"):
        load_manifest(tmp_path / "m")


def test_a_missing_or_damaged_model_is_one_line_from_every_command(tmp_path, models_dir, data):
    """The models folder named by --models-dir, EDGE_MODELS_DIR or models_dir alike; a wrong folder or a
    damaged file is an error message, never a traceback, and `edge config check` finds it too."""
    import os
    import subprocess
    import sys

    from support.paths import ROOT

    damaged = tmp_path / "models"
    for name in ("birdnet-v2.4", "birdnet-v2.4-range", "silero-vad"):
        shutil.copytree(models_dir / name, damaged / name)
    with (damaged / "birdnet-v2.4" / "model.onnx").open("r+b") as f:
        f.seek(1000)
        f.write(b"\xff\xff")  # a flipped bit on a card: same size, other bytes
    config = tmp_path / "edge.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n\n[source]\ntype = "replay"\npaths = ["{data / "curlew_call_1.wav"}"]\n'
    )
    commands = [
        ["replay", str(data / "curlew_call_1.wav"), "--out", str(tmp_path / "out")],
        ["models"],
        ["species", "--lat", "50", "--lon", "8"],
        ["config", "check", str(config)],
        ["run", "--config", str(config)],
    ]
    for folder, expected in ((damaged, "damaged or replaced"), (tmp_path / "none", "no such models folder")):
        for args in commands:
            result = subprocess.run(
                [sys.executable, "-m", "edge", *args],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "EDGE_MODELS_DIR": str(folder)},
                timeout=300,
            )
            message = result.stderr + result.stdout
            if args[0] == "species" and folder == damaged:  # it reads labels and the range model, both intact
                assert result.returncode == 0, message
                continue
            assert result.returncode == 1 and expected in message, (args, message)
            assert "Traceback" not in message, (args, message)
