"""Quantize a member to INT8 with ONNX Runtime: search which layers to quantize, keep the fastest that passes the gate.

Quantizing all of BirdNET V2.4 to INT8 has been reported to collapse top-1 agreement to about 34 %, while
quantizing only its classification head kept about 98 %; so no single recipe is trusted here. Each variant
(which layers, calibration method, activation/weight types) is built with quantize_static (QDQ, per channel),
calibrated on real recordings cut into crops exactly as edge cuts them, timed against FP32 side by side on this
machine, and gated by edge/inference/agreement.py on held-out recordings. The spectrogram front-end and the magnitude
compression before the backbone always stay in float: their nodes are never candidates.

Usage: python -m tools.models.quantize --model models/birdnet-v2.4 --out models/birdnet-v2.4-int8 [--variants a,b]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from edge.audio.windower import Windower, WindowSpec
from edge.inference.agreement import Agreement, agreement
from edge.inference.frontend import front_end_for
from edge.inference.manifest import INT8_CPU_FEATURES, Manifest, cpu_features, file_sha256, load_manifest
from edge.inference.member import crop_starts, flat_sigmoid
from edge.inference.sessions import make_session
from edge.sources.files import decode

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
# Disjoint sets of real recordings (sources and licences in tests/data/SOURCES.md). Calibration: field
# recordings with calls the model is unsure of, so ranges come from ordinary sound, not only from clear songs.
CALIBRATION = (
    "opso_great_plains_toad.wav",
    "pheasantCoucal_file0123.wav",
    "kingParrot_cabin.wav",
    "opso_audiomoth_metadata_15s.wav",
    "S4A03895_20190522_230000.wav",
)
# Held out: every recording we have on which BirdNET is confident somewhere (the gate's top-1 needs those).
HELD_OUT = (
    "maad_spinetail.wav",
    "opso_birds_10s.wav",
    "opso_aru_1_CSWA_3s.wav",
    "opso_rugr_drum.wav",
    "birdvox_warblr_fd79e55d_POSITIVE.wav",
    "S4A03895_20190522_120000.wav",
    "perch_clap.wav",
    "curlew_call_1.wav",
    "456440__inspectorj__bird-whistling-robin-single-13.hq.ogg",
)
# Edge's default grid (1 s) gives only 30 confident held-out crops from all the recordings we have; its
# --crop-stride 0.5 grid gives twice as many distinct crops. Both are reported; the gate uses the finer one.
HELD_OUT_STRIDE = 0.5
BATCH = 8
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class Variant:
    """Which nodes to quantize: Conv/MatMul/Gemm nodes whose layer matches `layers` (a regex over the names
    that layer_of gives) and whose kind is in `kinds`; how to calibrate; U8S8 = uint8 activations, int8
    weights (the fast pair on x86 VNNI), S8S8 = both int8. A quantized node's output is quantized too unless its
    op type is in `float_outputs`: uint8 steps of a wide range are coarse for logits."""

    name: str
    layers: str
    kinds: tuple[str, ...] = ("conv", "pointwise", "depthwise", "se", "dense")
    method: str = "MinMax"
    types: str = "U8S8"
    float_outputs: tuple[str, ...] = ()  # op types whose outputs are not re-quantized (e.g. the head's logits)


ALL_LAYERS = r"stem|block\d|post|head"
BLOCK3 = r"block[34]|post|head"
POINTWISE = ("conv", "pointwise", "dense")
VARIANTS = (
    Variant("head", "head"),
    Variant("head-float-out", "head", float_outputs=("MatMul",)),
    Variant("post+head-float-out", "post|head", float_outputs=("MatMul",)),
    Variant("block4+", r"block4|post|head", float_outputs=("MatMul",)),
    Variant("block3+", BLOCK3, float_outputs=("MatMul",)),
    Variant("block3+-percentile", BLOCK3, method="Percentile", float_outputs=("MatMul",)),
    Variant("block3+-entropy", BLOCK3, method="Entropy", float_outputs=("MatMul",)),
    Variant("block3+-pointwise", BLOCK3, kinds=POINTWISE, float_outputs=("MatMul",)),
    Variant("block2+", r"block[234]|post|head", float_outputs=("MatMul",)),
    Variant("blocks", r"block\d|post|head", float_outputs=("MatMul",)),
    Variant("all", ALL_LAYERS),
    Variant("all-pointwise", ALL_LAYERS, kinds=POINTWISE, float_outputs=("MatMul",)),
    Variant("all-percentile", ALL_LAYERS, method="Percentile", float_outputs=("MatMul",)),
    Variant("all-s8s8", ALL_LAYERS, types="S8S8", float_outputs=("MatMul",)),
    Variant("block3+-float-out", BLOCK3, float_outputs=QUANTIZED_OPS),
)


def layer_of(node: onnx.NodeProto) -> str | None:
    """BirdNET's layer a node belongs to, from the TFLite names tf2onnx kept (the node's own layer comes
    first); None for the unnamed front-end and everything not in the backbone proper."""
    if node.op_type in ("MatMul", "Gemm") and node.name.startswith("backbone/"):
        return "head"
    block = re.search(r"BLOCK_(\d)-\d+", node.name)
    if block:
        return f"block{block.group(1)}"
    if "POST_" in node.name:
        return "post"
    if re.search(r"/(CONV_0|POOL_0)", node.name) or "ACT_0" in node.name:
        return "stem"
    return None


def kind_of(node: onnx.NodeProto) -> str:
    if node.op_type != "Conv":
        return "dense"
    if any(a.name == "group" and a.i > 1 for a in node.attribute):
        return "depthwise"
    if "_SE_" in node.name:
        return "se"
    kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), None)
    return "pointwise" if kernel and all(k == 1 for k in kernel) else "conv"


def select_nodes(model: onnx.ModelProto, variant: Variant) -> list[str]:
    chosen = []
    for node in model.graph.node:
        layer = layer_of(node) if node.op_type in QUANTIZED_OPS else None
        if layer and re.fullmatch(variant.layers, layer) and kind_of(node) in variant.kinds:
            chosen.append(node.name)
    return chosen


@dataclass(frozen=True)
class Crops:
    """Model inputs [n, ...] of crops cut as edge cuts them, and which of them start on a whole second."""

    inputs: np.ndarray
    on_second: np.ndarray


def edge_crops(paths: list[Path], manifest: Manifest, stride: float = 1.0) -> Crops:
    """Decoded, resampled and windowed by edge's own code (5 s windows every 2.5 s, the tail rule included), then
    cut on the grid of Member: crops every `stride` seconds of stream time that fit in a window (a window shorter
    than a crop is one zero-padded crop), each crop once however many windows hold it."""
    rate, length = manifest.sample_rate, manifest.input_length
    step = stride * rate
    inputs, on_second = [], []
    for path in paths:
        windower = Windower(WindowSpec(), (rate,))
        crops: dict[int, np.ndarray] = {}
        for chunk in decode(path, path.name):
            for window in windower.push(chunk):
                audio, offset = window.audio[rate], window.offset[rate]
                for at in crop_starts(len(audio), offset, length, step):
                    crop = audio[at : at + length]
                    crops.setdefault(offset + at, np.pad(crop, (0, length - len(crop))))
        inputs += [crops[start] for start in sorted(crops)]
        on_second += [start % rate == 0 for start in sorted(crops)]
    return Crops(front_end_for(manifest)(np.stack(inputs)), np.array(on_second))


class CropReader(CalibrationDataReader):
    """Feeds the calibration crops to ORT's calibrator in batches, as edge batches them."""

    def __init__(self, input_name: str, inputs: np.ndarray):
        self.input_name, self.inputs = input_name, inputs
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = ({self.input_name: self.inputs[i : i + BATCH]} for i in range(0, len(self.inputs), BATCH))


def prepared(source: Path, target: Path) -> Path:
    """The model with one entry per opset domain: compose.merge_models lists the default domain twice, which ORT
    runs but its quantizer refuses."""
    model = onnx.load(str(source))
    seen: dict[str, onnx.OperatorSetIdProto] = {}
    for opset in model.opset_import:
        if opset.domain not in seen or opset.version > seen[opset.domain].version:
            seen[opset.domain] = opset
    del model.opset_import[:]
    model.opset_import.extend(seen[domain] for domain in sorted(seen))
    onnx.save(model, str(target))
    return target


def quantize_variant(source: Path, target: Path, variant: Variant, input_name: str, calibration: np.ndarray):
    activation, weight = {"U8S8": (QuantType.QUInt8, QuantType.QInt8), "S8S8": (QuantType.QInt8, QuantType.QInt8)}[
        variant.types
    ]
    quantize_static(
        str(source),
        str(target),
        CropReader(input_name, calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=activation,
        weight_type=weight,
        nodes_to_quantize=select_nodes(onnx.load(str(source)), variant),
        op_types_to_quantize=list(QUANTIZED_OPS),
        calibrate_method=CalibrationMethod[variant.method],
        # Histograms of every quantized tensor over all crops would not fit in memory; 8 crops at a time do.
        extra_options={
            "CalibMaxIntermediateOutputs": BATCH,
            "OpTypesToExcludeOutputQuantization": list(variant.float_outputs),
        },
    )


def probabilities(session: ort.InferenceSession, manifest: Manifest, inputs: np.ndarray) -> np.ndarray:
    out = [
        session.run([manifest.output_name], {manifest.input_name: inputs[i : i + BATCH]})[0]
        for i in range(0, len(inputs), BATCH)
    ]
    raw = np.concatenate(out)
    return flat_sigmoid(raw, 1.0) if manifest.output_kind == "logits" else raw


def paired_ms(reference: ort.InferenceSession, candidate: ort.InferenceSession, feed: dict, rounds: int):
    """Median ms per crop of both sessions, timed in alternation so that a busy neighbour slows both alike."""
    times: dict[int, list[float]] = {0: [], 1: []}
    for r in range(rounds + 1):
        for k, session in enumerate((reference, candidate)):
            start = time.perf_counter()
            session.run(None, feed)
            if r:  # the first round warms caches and lets ORT settle its buffers
                times[k].append((time.perf_counter() - start) * 1000 / len(next(iter(feed.values()))))
    return statistics.median(times[0]), statistics.median(times[1])


@dataclass(frozen=True)
class Result:
    variant: Variant
    nodes: int
    fp32_ms: float
    ms: float
    mb: float
    gate: Agreement  # on the held-out crops
    gate_on_second: Agreement  # on the held-out crops of edge's default 1 s grid only

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.ms


def evaluate(
    source: Manifest, variant: Variant, model: Path, held_out: Crops, reference: np.ndarray, rounds: int
) -> Result:
    session, fp32 = make_session(model, 1), make_session(source.path, 1)
    candidate = probabilities(session, source, held_out.inputs)
    fp32_ms, ms = paired_ms(fp32, session, {source.input_name: held_out.inputs[:BATCH]}, rounds)
    mask = held_out.on_second
    return Result(
        variant,
        len(select_nodes(onnx.load(str(source.path)), variant)),
        fp32_ms,
        ms,
        model.stat().st_size / 1e6,
        agreement(reference, candidate),
        agreement(reference[mask], candidate[mask]),
    )


def search(
    source: Manifest,
    variants: tuple[Variant, ...],
    calibration: np.ndarray,
    held_out: Crops,
    workdir: Path,
    rounds: int = 7,
    log=print,
) -> list[tuple[Result, Path]]:
    """Every variant built, measured and gated; each with the path of its model under `workdir`."""
    reference = probabilities(make_session(source.path, 1), source, held_out.inputs)
    model = prepared(source.path, workdir / "fp32.onnx")
    results = []
    for variant in variants:
        started = time.perf_counter()
        target = workdir / f"{re.sub(r'[^a-z0-9]+', '_', variant.name.lower())}.onnx"
        quantize_variant(model, target, variant, source.input_name, calibration)
        result = evaluate(source, variant, target, held_out, reference, rounds)
        log(
            f"{variant.name:20s} {result.ms:6.2f} ms/crop (fp32 {result.fp32_ms:.2f}) {result.mb:5.1f} MB "
            f"{result.gate.line()} [{time.perf_counter() - started:.0f} s]"
        )
        results.append((result, target))
    return results


def choose(results: list[Result]) -> Result | None:
    """The fastest variant that passes the gate (by speed-up over FP32 timed beside it); never a failing one."""
    passing = [r for r in results if r.gate.passes]
    return max(passing, key=lambda r: r.speedup) if passing else None


def table(results: list[Result], chosen: Result | None) -> str:
    rows = [
        "| variant | layers (kinds) | calibration | types | float outputs | nodes | ms/crop | FP32 ms/crop | speed-up "
        "| MB | "
        "top-1 | confident crops | top-10 MAD | top-1 on 1 s grid (n) | gate |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        v, g = r.variant, r.gate
        kinds = "all" if len(v.kinds) == len(Variant.kinds) else ", ".join(v.kinds)
        mark = " **chosen**" if r is chosen else ""
        rows.append(
            f"| {v.name}{mark} | `{v.layers.replace('|', ' or ')}` ({kinds}) | {v.method} | {v.types} | "
            f"{', '.join(v.float_outputs) or 'none'} | {r.nodes} | {r.ms:.2f} | "
            f"{r.fp32_ms:.2f} | {r.speedup:.2f}x | {r.mb:.1f} | {g.top1:.1%} | {g.confident} | {g.mad:.4f} | "
            f"{r.gate_on_second.top1:.1%} ({r.gate_on_second.confident}) | "
            f"{'pass' if g.passes else 'fail'} |"
        )
    return "\n".join(rows)


def report(
    source: Manifest,
    results: list[Result],
    chosen: Result | None,
    crops: dict[str, int],
    deterministic: str,
    tuned_for: tuple[str, ...],
) -> str:
    verdict = (
        f"Chosen: **{chosen.variant.name}**, the largest speed-up over FP32 among the variants that pass "
        f"the gate: {chosen.gate.line()}."
        if chosen
        else "No variant passed the gate: nothing was written."
    )
    if chosen and chosen.speedup < 1:
        verdict += (
            " No variant that passes was faster than FP32 here: INT8 buys a smaller file, not speed. The float"
            " front-end (spectrogram Convs, silence MaxPools, compression) takes about half of FP32's time and"
            " stays float, and each quantized Conv between float activations adds its own Q/DQ conversions."
        )
    return f"""# INT8 quantization of {source.name}

Written by `tools/quantize.py` (onnxruntime {ort.__version__}, onnx {onnx.__version__}). Every variant is
`quantize_static` in QDQ format with per-channel weights; only Conv, MatMul and Gemm nodes of the layers named
are quantized, so the spectrogram front-end and the magnitude compression before the backbone stay in float.

Timing: ORT CPU provider, all graph optimisations, 1 intra-op thread, batch {BATCH} real crops, median of the
timed runs, each variant alternating with FP32 in the same process (speed-up = FP32 / variant, pair by pair).
CPU INT8 features of this machine: {", ".join(tuned_for) or "none"}.

Gate (edge/inference/agreement.py, probabilities = flat_sigmoid(logits, 1.0)): top-1 agreement with FP32 on the crops
whose FP32 top probability is at least 0.5 must be at least 97 %, and the mean absolute difference of the
probabilities of FP32's top-10 classes at most 0.02.

Calibration ({crops["calibration"]} crops on edge's 1 s grid): {", ".join(f"`{f}`" for f in CALIBRATION)}.

Held out ({crops["held_out"]} crops on edge's {HELD_OUT_STRIDE:g} s grid, i.e. `--crop-stride {HELD_OUT_STRIDE:g}`;
the default 1 s grid alone has only {results[0].gate_on_second.confident if results else 0} confident crops, shown
in its own column): {", ".join(f"`{f}`" for f in HELD_OUT)}.

{table(results, chosen)}

{verdict}

Determinism: {deterministic}
"""


def manifest_text(source: Manifest, chosen: Result, sha256: str, tuned_for: tuple[str, ...]) -> str:
    """The FP32 manifest with the new name, title and checksum, plus a [quantization] table (the layers' regex
    through json.dumps, whose escapes TOML's basic strings share)."""
    text = (source.directory / "manifest.toml").read_text()
    name = f"{source.name}-int8"
    # count=1: the top-level keys come first; [input] and [output] have a `name` of their own.
    text = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', text, count=1)
    text = re.sub(r'(?m)^title = "(.*?)( \(FP32, ONNX\))?"$', r'title = "\1 (INT8, ONNX)"', text, count=1)
    text = re.sub(r'(?m)^sha256 = ".*"$', f'sha256 = "{sha256}"', text, count=1)
    v, g = chosen.variant, chosen.gate
    features = ", ".join(f'"{f}"' for f in tuned_for)
    return (
        text
        + f"""
# How this model was derived from {source.name}; see quantization.md.
[quantization]
precision = "int8"
base_model = "{source.name}"
base_sha256 = "{source.sha256}"
method = "onnxruntime quantize_static, QDQ, per-channel, {v.types}, {v.method} calibration"
variant = "{v.name}"
quantized_layers = {json.dumps(v.layers)}
tuned_for = [{features}]
top1_agreement = {g.top1:.4f}
confident_crops = {g.confident}
top10_mad = {g.mad:.5f}
"""
    )


def write_directory(
    source: Manifest, chosen: Result, model: Path, out: Path, markdown: str, tuned_for: tuple[str, ...]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, out / "model.onnx")
    for name in (source.labels_file, "LICENSE"):
        if (source.directory / name).is_file():
            shutil.copyfile(source.directory / name, out / name)
    attribution = source.directory / "ATTRIBUTION.md"
    base = attribution.read_text() if attribution.is_file() else f"# {source.title}\n"
    (out / "ATTRIBUTION.md").write_text(
        base + f"\nThis directory holds a quantized derivative of `{source.name}` (INT8 weights and activations in "
        f"the layers named in manifest.toml), made by `tools/quantize.py`: same licence, same attribution; see "
        f"quantization.md for how it was made and how closely it follows the original.\n"
    )
    (out / "manifest.toml").write_text(manifest_text(source, chosen, file_sha256(out / "model.onnx"), tuned_for))
    (out / "quantization.md").write_text(markdown)


def determinism(source: Manifest, chosen: Result, model: Path, calibration: np.ndarray, workdir: Path) -> str:
    again = workdir / "again.onnx"
    quantize_variant(
        prepared(source.path, workdir / "fp32-again.onnx"), again, chosen.variant, source.input_name, calibration
    )
    if file_sha256(again) == file_sha256(model):
        return (
            "quantizing the chosen variant a second time in the same run gave the same bytes (sha256 equal). "
            "Calibration ranges come from FP32 ONNX Runtime runs, whose last bits can differ between CPUs, so "
            "the same bytes are expected on the same machine and ORT version, not across machines."
        )
    return "quantizing the chosen variant a second time gave DIFFERENT bytes: the output is not deterministic."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "birdnet-v2.4")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "birdnet-v2.4-int8")
    parser.add_argument(
        "--variants",
        default=",".join(v.name for v in VARIANTS),
        help="comma-separated variant names (default: all): " + ", ".join(v.name for v in VARIANTS),
    )
    parser.add_argument(
        "--calibration-crops", type=int, default=88, help="at most this many calibration crops (whole batches of 8)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="timed runs per model and variant")
    args = parser.parse_args()
    source = load_manifest(args.model)
    by_name = {v.name: v for v in VARIANTS}
    variants = tuple(by_name[name.strip()] for name in args.variants.split(","))
    calibration = edge_crops([DATA / f for f in CALIBRATION], source).inputs
    # Evenly spread over the recordings when capped, so that none is left out; whole batches only, as ORT's
    # histogram calibrators cannot stack a shorter last batch.
    keep = min(args.calibration_crops, len(calibration)) // BATCH * BATCH
    calibration = calibration[np.linspace(0, len(calibration) - 1, keep).round().astype(int)]
    held_out = edge_crops([DATA / f for f in HELD_OUT], source, HELD_OUT_STRIDE)
    features = cpu_features() or frozenset()
    tuned_for = tuple(f for f in INT8_CPU_FEATURES if f in features)
    with tempfile.TemporaryDirectory() as tmp:
        found = search(source, variants, calibration, held_out, Path(tmp), args.rounds)
        results = [r for r, _ in found]
        chosen = choose(results)
        crops = {"calibration": len(calibration), "held_out": len(held_out.inputs)}
        if chosen is None:
            print(report(source, results, None, crops, "not checked", tuned_for))
            raise SystemExit("no variant passed the gate")
        model = dict((id(r), p) for r, p in found)[id(chosen)]
        markdown = report(
            source, results, chosen, crops, determinism(source, chosen, model, calibration, Path(tmp)), tuned_for
        )
        write_directory(source, chosen, model, args.out, markdown, tuned_for)
    print(markdown)


if __name__ == "__main__":
    main()
