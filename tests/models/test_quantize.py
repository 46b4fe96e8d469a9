"""The INT8 BirdNET: the committed model against FP32 on held-out recordings, the gate itself, the manifest's
quantization table as `edge models` shows it, and tools/models/quantize.py run end to end on a tiny model."""

import importlib.util
import math
import sys
import tomllib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.inference.agreement import agreement
from edge.inference.manifest import INT8_CPU_FEATURES, ModelError, cpu_features, find, load_manifest
from edge.inference.sessions import make_session
from support.models import write_model_directory
from support.paths import DATA, ROOT
from support.processes import edge_cli


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("quantize_tool", ROOT / "tools" / "models" / "quantize.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# -- the committed model ---------------------------------------------------------------------------------------


def test_int8_model_passes_the_gate_on_held_out_recordings(tool, models_dir):
    fp32, int8 = find(models_dir, "birdnet-v2.4"), find(models_dir, "birdnet-v2.4-int8")
    held_out = tool.edge_crops([DATA / f for f in tool.HELD_OUT], fp32, tool.HELD_OUT_STRIDE)
    reference = tool.probabilities(make_session(fp32.path), fp32, held_out.inputs)
    gate = agreement(reference, tool.probabilities(make_session(int8.path), int8, held_out.inputs))
    assert gate.passes, gate.line()
    assert gate.confident >= 40, "too few confident crops for a 97 % figure to mean anything"
    written = tomllib.loads((int8.directory / "manifest.toml").read_text())["quantization"]
    assert written["confident_crops"] == gate.confident
    # Other CPUs may round the INT8 kernels differently; the figures must stay close to those written.
    assert written["top1_agreement"] == pytest.approx(gate.top1, abs=0.02)
    assert written["top10_mad"] == pytest.approx(gate.mad, abs=0.005)


def test_calibration_and_held_out_sets_are_disjoint_and_present(tool):
    assert not set(tool.CALIBRATION) & set(tool.HELD_OUT)
    sources = (DATA / "SOURCES.md").read_text()
    for name in tool.CALIBRATION + tool.HELD_OUT:
        assert (DATA / name).is_file() and f"`{name}`" in sources


# -- the gate ---------------------------------------------------------------------------------------------------

ROWS = np.random.default_rng(7)  # shared: each call draws the next rows


def confident_rows(n: int, classes: int = 20, rng: np.random.Generator = ROWS) -> np.ndarray:
    """n crops whose top class (0.9) stands well above the rest (at most 0.3)."""
    rows = rng.uniform(0.0, 0.3, (n, classes))
    rows[np.arange(n), rng.integers(0, classes, n)] = 0.9
    return rows


def test_gate_passes_small_differences():
    reference = confident_rows(100)
    result = agreement(reference, np.clip(reference + np.random.default_rng(1).normal(0, 0.005, reference.shape), 0, 1))
    assert result.passes and result.top1 == 1.0 and result.confident == 100 and result.mad < 0.01
    assert "top-1 100.0% on 100 confident crops" in result.line() and result.line().endswith("pass")


def test_gate_fails_when_four_in_a_hundred_change_their_top_class():
    reference = confident_rows(100)
    candidate = reference.copy()
    for row in range(4):
        candidate[row, (reference[row].argmax() + 1) % 20] = 0.95
    result = agreement(reference, candidate)
    assert result.top1 == 0.96 and result.mad <= 0.02 and not result.passes
    assert result.line().endswith("FAIL")


def test_gate_fails_on_confidences_that_drift():
    reference = confident_rows(50)
    result = agreement(reference, reference + 0.03)
    assert result.top1 == 1.0 and result.mad == pytest.approx(0.03) and not result.passes


def test_top1_counts_only_crops_where_the_reference_is_confident():
    reference = confident_rows(40)
    unsure = np.full((60, 20), 0.1)
    unsure[:, 3] = 0.45  # below 0.5: not a detection, so a different top class there does not count
    candidate_unsure = unsure.copy()
    candidate_unsure[:, 5] = 0.46
    result = agreement(np.vstack([reference, unsure]), np.vstack([reference, candidate_unsure]))
    assert result.confident == 40 and result.top1 == 1.0 and result.crops == 100


def test_gate_without_confident_crops_does_not_pass():
    flat = np.full((10, 20), 0.2)
    result = agreement(flat, flat)
    assert result.confident == 0 and math.isnan(result.top1) and not result.passes
    with pytest.raises(ValueError):
        agreement(flat, flat[:, :5])


# -- the manifest and `edge models` -----------------------------------------------------------------------------


def test_manifest_reads_precision_and_cpu_features(models_dir):
    int8, fp32 = find(models_dir, "birdnet-v2.4-int8"), find(models_dir, "birdnet-v2.4")
    assert int8.precision == "int8" and int8.tuned_for and set(int8.tuned_for) <= set(INT8_CPU_FEATURES)
    assert int8.checksum_ok() and int8.labels() == fp32.labels()
    assert (int8.input_name, int8.output_name, int8.sample_rate) == (fp32.input_name, fp32.output_name, 48000)
    assert (fp32.precision, fp32.tuned_for) == ("fp32", ())


def test_cpu_features_of_x86_arm_and_none(tmp_path):
    (tmp_path / "x86").write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512_vnni\n\nprocessor\t: 1\n")
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd0c\n")
    assert cpu_features(tmp_path / "x86") == {"fpu", "sse", "avx2", "avx512_vnni"}
    assert {"asimddp", "i8mm"} <= cpu_features(tmp_path / "arm")
    assert cpu_features(tmp_path / "absent") is None


def quantized_tiny(folder, tuned_for: str):
    directory = tiny_waveform_model(folder)
    with (directory / "manifest.toml").open("a") as f:
        f.write(f'\n[quantization]\nprecision = "int8"\ntuned_for = {tuned_for}\n')
    return directory


def test_models_lists_precision_and_says_what_this_cpu_lacks(tmp_path, models_dir):
    result = edge_cli("models", "--models-dir", str(models_dir))
    assert "int8" in result.stdout and "fp32" in result.stdout and "MISMATCH" not in result.stdout
    assert "birdnet-v2.4-int8: int8, tuned for " in result.stdout
    quantized_tiny(tmp_path, '["avx2", "no_such_flag"]')
    result = edge_cli("models", "--models-dir", str(tmp_path))
    if cpu_features() is None:
        assert "does not say which it has" in result.stdout
    else:
        assert "tiny-conv: int8, tuned for avx2, no_such_flag; this CPU lacks" in result.stdout
        assert "no_such_flag: it runs, but slower" in result.stdout


def test_tuned_for_must_be_a_list(tmp_path):
    with pytest.raises(ModelError, match="tuned_for must be a list"):
        load_manifest(quantized_tiny(tmp_path, '"avx2"'))


# -- the tool on a tiny model -----------------------------------------------------------------------------------


def tiny_waveform_model(folder, rate: int = 16000):
    """1 s at 16 kHz: an unnamed strided Conv as front-end (as BirdNET's spectrogram), then layers named as
    tf2onnx names BirdNET's (a pointwise and a depthwise Conv of BLOCK_1-1) and a MatMul head, 5 logits."""
    rng = np.random.default_rng(3)

    def const(name, shape, scale):
        return numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name)

    bias = numpy_helper.from_array(np.array([1.5, 0.5, 0.0, -0.5, -1.0], np.float32), "head_bias")
    graph = helper.make_graph(
        [
            helper.make_node("Unsqueeze", ["audio", "axis1"], ["signal"]),
            helper.make_node("Conv", ["signal", "front_w"], ["bands"], strides=[128], kernel_shape=[256]),
            helper.make_node("Abs", ["bands"], ["magnitude"]),
            helper.make_node("Unsqueeze", ["magnitude", "axis3"], ["image"]),  # [batch, 8, frames, 1]
            helper.make_node(
                "Conv",
                ["image", "pw_w", "pw_b"],
                ["expanded"],
                kernel_shape=[1, 1],
                name="backbone/model/BLOCK_1-1_BN_1/FusedBatchNormV3;model/BLOCK_1-1_CONV_1/Conv2D",
            ),
            helper.make_node("Relu", ["expanded"], ["act"], name="backbone/Relu"),
            helper.make_node(
                "Conv",
                ["act", "dw_w", "dw_b"],
                ["mixed"],
                kernel_shape=[3, 1],
                pads=[1, 0, 1, 0],
                group=16,
                name="backbone/model/BLOCK_1-1_BN_2/FusedBatchNormV3;depthwise",
            ),
            helper.make_node("GlobalAveragePool", ["mixed"], ["pooled"], name="backbone/model/GLOBAL_AVG_POOL"),
            helper.make_node("Flatten", ["pooled"], ["features"], name="backbone/Flatten"),
            helper.make_node("MatMul", ["features", "head_w"], ["raw"], name="backbone/Identity"),
            helper.make_node("Add", ["raw", "head_bias"], ["logits"], name="backbone/Add"),
        ],
        "tiny-conv",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", rate])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        [
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
            numpy_helper.from_array(np.array([3], np.int64), "axis3"),
            const("front_w", (8, 1, 256), 0.1),
            const("pw_w", (16, 8, 1, 1), 0.5),
            const("pw_b", (16,), 0.1),
            const("dw_w", (16, 1, 3, 1), 0.5),
            const("dw_b", (16,), 0.1),
            const("head_w", (16, 5), 1.0),
            bias,
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return write_model_directory(
        folder,
        "tiny-conv",
        model,
        [f"Tonus {i}_Tone {i}" for i in range(5)],
        f'kind = "waveform"\nsample_rate = {rate}\nlength = {rate}\nname = "audio"',
        'kind = "logits"\nname = "logits"',
    )


def inputs_from_dequantize(model: onnx.ModelProto, op_type: str) -> list[bool]:
    """For each node of `op_type`, whether its data input comes through a DequantizeLinear (is quantized)."""
    produced_by = {out: node.op_type for node in model.graph.node for out in node.output}
    return [
        produced_by.get(node.input[0]) == "DequantizeLinear" for node in model.graph.node if node.op_type == op_type
    ]


def test_tool_quantizes_gates_and_writes_a_tiny_model(tool, tmp_path):
    source = load_manifest(tiny_waveform_model(tmp_path / "models"))
    calibration = tool.edge_crops([DATA / "opso_birds_10s.wav"], source).inputs
    held_out = tool.edge_crops([DATA / "maad_spinetail.wav"], source)
    assert calibration.shape[1] == held_out.inputs.shape[1] == 16000 and len(held_out.inputs) > len(calibration)
    variants = (tool.Variant("head", "head", float_outputs=("MatMul",)), tool.Variant("blocks", r"block\d|post|head"))
    work = tmp_path / "work"
    work.mkdir()
    found = tool.search(source, variants, calibration, held_out, work, rounds=1, log=lambda line: None)
    results = [r for r, _ in found]
    assert [r.variant.name for r in results] == ["head", "blocks"] and [r.nodes for r in results] == [1, 3]
    assert all(r.gate.passes for r in results), [r.gate.line() for r in results]
    blocks = onnx.load(str(found[1][1]))
    # The strided front-end Conv stays float; the two named Convs of the block are quantized.
    assert inputs_from_dequantize(blocks, "Conv") == [False, True, True]
    chosen = tool.choose(results)
    model = dict((id(r), p) for r, p in found)[id(chosen)]
    assert "same bytes" in tool.determinism(source, chosen, model, calibration, work)
    tool.write_directory(source, chosen, model, tmp_path / "out", "report\n", ("avx2",))
    written = load_manifest(tmp_path / "out")
    assert (written.name, written.precision, written.tuned_for) == ("tiny-conv-int8", "int8", ("avx2",))
    assert (written.input_name, written.output_name) == (source.input_name, source.output_name)
    assert written.checksum_ok() and written.labels() == source.labels()
    assert "quantized derivative of `tiny-conv`" in (tmp_path / "out" / "ATTRIBUTION.md").read_text()


def test_a_failing_variant_is_never_chosen(tool):
    def result(name, ms, passes):
        gate = agreement(np.eye(3), np.eye(3) if passes else np.eye(3)[::-1])
        return tool.Result(tool.Variant(name, "head"), 1, 10.0, ms, 1.0, gate, gate)

    assert (
        tool.choose([result("fast", 2.0, False), result("slow", 9.0, True), result("mid", 5.0, True)]).variant.name
        == "mid"
    )
    assert tool.choose([result("fast", 2.0, False)]) is None
