"""Small ONNX models the tests build with onnx.helper, written as model directories with a manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LOGMEL = {
    "n_fft": 1024,
    "hop_length": 320,
    "n_mels": 128,
    "fmin": 50.0,
    "fmax": 14000.0,
    "top_db": 80.0,
    "normalise": "zscore",
    "mel_scale": "htk",
    "layout": "nchw",
}


def write_model_directory(
    folder: Path, name: str, model: onnx.ModelProto, labels: list[str], inp: str, output: str
) -> Path:
    """A model directory as edge reads it: model.onnx, labels.txt and a manifest with the model's sha256."""
    directory = folder / name
    directory.mkdir(parents=True)
    onnx.save(model, str(directory / "model.onnx"))
    (directory / "labels.txt").write_text("\n".join(labels) + "\n")
    digest = hashlib.sha256((directory / "model.onnx").read_bytes()).hexdigest()
    (directory / "manifest.toml").write_text(
        f'name = "{name}"\nversion = "0.1"\nlicence = "MIT"\nfile = "model.onnx"\nsha256 = "{digest}"\n'
        f'labels = "labels.txt"\n\n[input]\n{inp}\n\n[output]\n{output}\n'
    )
    return directory


def band_labels(n_classes: int) -> list[str]:
    """Class i < n_mels answers to mel band i; one class shares its scientific name with BirdNET."""
    labels = [f"Tonus band{i:03d}_Band {i} tone" for i in range(n_classes)]
    labels[-1] = "Cranioleuca erythrops_Red-faced Spinetail"
    return labels


def write_logmel_model(
    folder: Path, name: str = "birdclef-tiny", n_classes: int = 234, seconds: float = 5.0, sample_rate: int = 32000
) -> Path:
    """A BirdCLEF-shaped member: [batch, 1, 128 mels, frames] in, probabilities of `n_classes` out.

    It averages each mel band over time and maps band i to class i (a tone lights up its band's class).
    """
    n_mels = LOGMEL["n_mels"]
    weights = np.zeros((n_mels, n_classes), np.float32)
    weights[np.arange(n_mels), np.arange(n_mels)] = 4.0
    bias = np.full(n_classes, -6.0, np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["mel"], ["band"], axes=[3], keepdims=0),  # [batch, 1, mels]
            helper.make_node("Flatten", ["band"], ["band2"], axis=1),
            helper.make_node("Gemm", ["band2", "w", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["probabilities"]),
        ],
        name,
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", 1, n_mels, None])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_classes])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    logmel = "\n".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in LOGMEL.items())
    inp = (
        f'kind = "logmel"\nsample_rate = {sample_rate}\nlength = {int(seconds * sample_rate)}\nname = "mel"\n'
        f"\n[input.logmel]\n{logmel}"
    )
    return write_model_directory(
        folder, name, model, band_labels(n_classes), inp, 'kind = "probabilities"\nname = "probabilities"'
    )


def write_waveform_model(folder: Path, name: str = "wave-tiny", seconds: float = 3.0, sample_rate: int = 16000) -> Path:
    """A waveform member whose three logits are the max, mean and min sample of its crop: easy to predict."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMax", ["audio"], ["hi"], axes=[1], keepdims=1),
            helper.make_node("ReduceMean", ["audio"], ["mean"], axes=[1], keepdims=1),
            helper.make_node("ReduceMin", ["audio"], ["lo"], axes=[1], keepdims=1),
            helper.make_node("Concat", ["hi", "mean", "lo"], ["logits"], axis=1),
        ],
        name,
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", int(seconds * sample_rate)])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    inp = f'kind = "waveform"\nsample_rate = {sample_rate}\nlength = {int(seconds * sample_rate)}\nname = "audio"'
    return write_model_directory(
        folder,
        name,
        model,
        ["Peak peak_Peak", "Mean mean_Mean", "Trough trough_Trough"],
        inp,
        'kind = "logits"\nname = "logits"',
    )
