"""ONNX Runtime sessions: every model edge runs (ensemble members, the speech detector, the range model) is
opened here alike: on the CPU, with all graph optimisations and a known number of threads."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def make_session(path: Path, intra_op_threads: int = 1, inter_op_threads: int = 1) -> ort.InferenceSession:
    """A session of the model at `path`, built once per model and reused for every run. `intra_op_threads`
    work inside an operator (1: the caller's thread alone); `inter_op_threads` run independent branches of
    the graph, in parallel when more than one."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    if inter_op_threads > 1:
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
