"""An EfficientNet-B0 member with random weights, for timing the ensemble at a BirdCLEF-winning system's cost.

The graph is EfficientNet-B0 as in Tan & Le 2019 (stem, 16 MBConv blocks with squeeze-and-excitation, 1x1 head
of 1280 channels, global average pool, a classifier), BatchNorm folded into the convolutions' biases, on a
one-channel log-mel spectrogram. Its weights are random: the scores mean nothing, only the cost is real.

Weights are He-normal, drawn from numpy's default_rng(seed). Each convolution's BatchNorm is set to the
statistics of a calibration batch (smoothed noise from the same generator) and folded in, so that activations
keep one scale through the 80 layers on real recordings too; He's scaling alone ignores the gates and the
spatial correlation of spectrograms, and the outputs then sit at 0 or 1.

Usage: python -m tools.models.mel_member OUT_DIR [--name effnet-b0-random] [--seed 0] [--classes 182]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

from edge.inference.manifest import LogMelSpec

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = ROOT / "models" / "birdnet-v2.4" / "labels.txt"

# BirdCLEF-style: 5 s at 32 kHz gives 501 frames of 128 mels.
BIRDCLEF_LOGMEL = {
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

# (expansion, kernel, stride, output channels, repeats) of EfficientNet-B0's seven stages.
STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
STEM, HEAD, SE_RATIO = 32, 1280, 0.25

# The folded BatchNorms give every convolution's output this standard deviation (and shifts of BIAS_STD times
# it) on the calibration batch: large enough that swish works as a ReLU and the network is nearly positively
# homogeneous. At 1, swish's curvature and the gates compound differences of scale between inputs block
# after block: measured on tests/data, 100- to 1000-fold by the head, and outputs stuck at 0 or 1.
ACTIVATION_SCALE = 20.0
BIAS_STD = 0.1
CALIBRATION = (2, 128)  # examples and frames of the batch whose statistics the BatchNorms are folded with


@dataclass(frozen=True)
class Tensor:
    """A tensor of the graph by name, with its value on the calibration batch."""

    name: str
    value: np.ndarray


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """ONNX Conv with pads kernel // 2 on every side, for a whole layer or one channel per group."""
    pad = w.shape[-1] // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, w.shape[-2:], axis=(2, 3))[:, :, ::stride, ::stride]
    if depthwise:
        return np.einsum("nchwij,cij->nchw", windows, w[:, 0])
    return np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)


class GraphBuilder:
    """Collects nodes and weights while computing every tensor on a calibration batch.

    Weights are He-normal; each convolution is then followed by a BatchNorm set to the calibration batch's
    statistics over the whole layer (one scale, as LSUV init does: per channel, the weak channels' large
    gains make the network unstable) and folded into the convolution's weights and bias.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []

    def op(self, op_type: str, inputs: list[Tensor | str], name: str, value: np.ndarray, **attributes) -> Tensor:
        names = [x.name if isinstance(x, Tensor) else x for x in inputs]
        self.nodes.append(helper.make_node(op_type, names, [name], **attributes))
        return Tensor(name, value)

    def weight(self, name: str, value: np.ndarray) -> str:
        self.weights.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv(
        self, x: Tensor, name: str, c_out: int, kernel: int = 1, stride: int = 1, depthwise: bool = False
    ) -> Tensor:
        """A convolution with its BatchNorm folded in."""
        c_in = x.value.shape[1]
        shape = (c_out, 1 if depthwise else c_in, kernel, kernel)
        w = self.rng.standard_normal(shape) * math.sqrt(2.0 / math.prod(shape[1:]))
        shift = self.rng.standard_normal(c_out) * BIAS_STD * ACTIVATION_SCALE
        y = conv2d(x.value, w, stride, depthwise)
        gain, mean = ACTIVATION_SCALE / y.std(), y.mean()
        w, b = w * gain, shift - mean * gain
        value = (y - mean) * gain + shift[:, None, None]
        return self.op(
            "Conv",
            [x, self.weight(f"{name}.w", w), self.weight(f"{name}.b", b)],
            name,
            value,
            kernel_shape=[kernel] * 2,
            strides=[stride] * 2,
            pads=[kernel // 2] * 4,
            group=c_in if depthwise else 1,
        )

    def swish(self, x: Tensor) -> Tensor:
        gate = self.op("Sigmoid", [x], f"{x.name}.sigmoid", sigmoid(x.value))
        return self.op("Mul", [x, gate], f"{x.name}.swish", x.value * gate.value)

    def pool(self, x: Tensor, name: str) -> Tensor:
        return self.op("GlobalAveragePool", [x], name, x.value.mean(axis=(2, 3), keepdims=True))

    def squeeze_excite(self, x: Tensor, name: str, reduced: int) -> Tensor:
        squeezed = self.swish(self.conv(self.pool(x, f"{name}.pool"), f"{name}.reduce", reduced))
        expanded = self.conv(squeezed, f"{name}.expand", x.value.shape[1])
        gate = self.op("Sigmoid", [expanded], f"{name}.gate", sigmoid(expanded.value))
        return self.op("Mul", [x, gate], f"{name}.out", x.value * gate.value)

    def mbconv(self, x: Tensor, name: str, c_out: int, expansion: int, kernel: int, stride: int) -> Tensor:
        c_in = x.value.shape[1]
        y = self.swish(self.conv(x, f"{name}.expand", c_in * expansion)) if expansion != 1 else x
        y = self.swish(self.conv(y, f"{name}.depthwise", c_in * expansion, kernel, stride, depthwise=True))
        y = self.squeeze_excite(y, f"{name}.se", max(1, int(c_in * SE_RATIO)))
        y = self.conv(y, f"{name}.project", c_out)
        if stride == 1 and c_in == c_out:
            return self.op("Add", [y, x], f"{name}.out", y.value + x.value)
        return y

    def classifier(self, x: Tensor, n_classes: int) -> Tensor:
        """Gemm to logits centred and of unit variance on the calibration batch, then Sigmoid."""
        features = self.op("Flatten", [x], "features", x.value.reshape(len(x.value), -1))
        w = self.rng.standard_normal((n_classes, features.value.shape[1]))
        logits = features.value @ w.T
        w, b = w / logits.std(), (self.rng.standard_normal(n_classes) * BIAS_STD - logits.mean(axis=0)) / logits.std()
        z = self.op(
            "Gemm",
            [features, self.weight("classifier.w", w), self.weight("classifier.b", b)],
            "logits",
            features.value @ w.T + b,
            transB=1,
        )
        return self.op("Sigmoid", [z], "probabilities", sigmoid(z.value))


def calibration_batch(spec: LogMelSpec, frames: int, rng: np.random.Generator) -> np.ndarray:
    """[examples, 1, n_mels, frames]: noise smoothed in time and frequency like a spectrogram, z-scored."""
    noise = rng.standard_normal((CALIBRATION[0], 1, spec.n_mels, min(frames, CALIBRATION[1])))
    smooth = sliding_window_view(
        np.pad(noise, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="wrap"), (5, 5), axis=(2, 3)
    ).mean(axis=(-2, -1))
    return (smooth - smooth.mean(axis=(1, 2, 3), keepdims=True)) / smooth.std(axis=(1, 2, 3), keepdims=True)


def efficientnet_b0(spec: LogMelSpec, frames: int, n_classes: int, rng: np.random.Generator) -> onnx.ModelProto:
    """EfficientNet-B0 on [batch, 1, n_mels, frames] (or [batch, n_mels, frames] for layout "nct")."""
    g = GraphBuilder(rng)
    x = Tensor("mel", calibration_batch(spec, frames, rng))
    if spec.layout == "nct":
        g.weights.append(numpy_helper.from_array(np.array([1], np.int64), "channel_axis"))
        x = g.op("Unsqueeze", [x, "channel_axis"], "mel.nchw", x.value)
    x = g.swish(g.conv(x, "stem", STEM, kernel=3, stride=2))
    index = 0
    for expansion, kernel, stride, c_out, repeats in STAGES:
        for repeat in range(repeats):
            x = g.mbconv(x, f"block{index}", c_out, expansion, kernel, stride if repeat == 0 else 1)
            index += 1
    x = g.pool(g.swish(g.conv(x, "head", HEAD)), "pool")
    probabilities = g.classifier(x, n_classes)
    shape = ["batch", 1, spec.n_mels, frames] if spec.layout == "nchw" else ["batch", spec.n_mels, frames]
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_b0_random",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(probabilities.name, TensorProto.FLOAT, ["batch", n_classes])],
        g.weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edge-mel-member")
    onnx.checker.check_model(model)
    return model


def n_frames(spec: LogMelSpec, length: int) -> int:
    """Frames edge's front end makes of `length` samples."""
    return 1 + (length if spec.center else length - spec.n_fft) // spec.hop_length


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def logmel_table(spec: LogMelSpec) -> str:
    """The [input.logmel] lines; None (no fmax, no mel_norm) is said by leaving the key out."""
    if spec.top_db is None:
        raise ValueError("top_db = None cannot be written in a manifest (leaving it out means 80 dB)")
    fields = asdict(spec)
    return "\n".join(f"{key} = {toml_value(value)}" for key, value in fields.items() if value is not None)


def pick_labels(n_classes: int, rng: np.random.Generator, taxonomy: Path) -> list[str]:
    """`n_classes` "Scientific name_Common name" lines of the ensemble's taxonomy, in its order."""
    lines = [line.strip() for line in taxonomy.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [lines[i] for i in sorted(rng.choice(len(lines), size=n_classes, replace=False))]


def write_mel_member(
    folder: Path,
    name: str,
    *,
    seed: int = 0,
    sample_rate: int = 32000,
    seconds: float = 5.0,
    logmel: dict | None = None,
    n_classes: int = 182,
    taxonomy: Path = TAXONOMY,
) -> Path:
    """Write `folder/name`: model.onnx, labels.txt and manifest.toml of a random-weight EfficientNet-B0.

    The same arguments give identical bytes. Raises FileExistsError when the directory exists.
    """
    spec = LogMelSpec(**(BIRDCLEF_LOGMEL if logmel is None else logmel))
    length = round(seconds * sample_rate)
    rng = np.random.default_rng(seed)
    labels = pick_labels(n_classes, rng, taxonomy)
    model = efficientnet_b0(spec, n_frames(spec, length), n_classes, rng)
    directory = folder / name
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(model.SerializeToString())
    (directory / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    digest = hashlib.sha256((directory / "model.onnx").read_bytes()).hexdigest()
    (directory / "manifest.toml").write_text(
        f"# Written by tools/models/mel_member.py (seed {seed}).\n"
        f'name = "{name}"\nversion = "0.1"\n'
        f'title = "EfficientNet-B0 on log-mel, RANDOM weights (seed {seed}): for timing only, scores mean nothing"\n'
        f'licence = "MIT"\nfile = "model.onnx"\nsha256 = "{digest}"\nlabels = "labels.txt"\n'
        f'label_format = "scientific_common"\n\n'
        f'[input]\nkind = "logmel"\nsample_rate = {sample_rate}\nlength = {length}\nname = "mel"\n'
        "# One input per run: batches of EfficientNet activations cost memory and buy no speed on a CPU.\n"
        "batch = 1\n\n"
        f"[input.logmel]\n{logmel_table(spec)}\n\n"
        f'[output]\nkind = "probabilities"\nname = "probabilities"\n',
        encoding="utf-8",
    )
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="models folder to write the member's directory into")
    parser.add_argument("--name", default="effnet-b0-random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, default=182)
    parser.add_argument("--sample-rate", type=int, default=32000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    directory = write_mel_member(
        args.out_dir,
        args.name,
        seed=args.seed,
        sample_rate=args.sample_rate,
        seconds=args.seconds,
        n_classes=args.classes,
    )
    print(directory)


if __name__ == "__main__":
    main()
