"""Convert BatDetect2's UK model (PyTorch, shipped in the `batdetect2` package) to ONNX under models/.

The graph takes the PCEN spectrogram that edge.inference.calls computes in NumPy ([batch, 1, bins, frames],
any number of frames that the padding rule gives), subtracts each bin's mean over time and clips at zero,
resizes it bilinearly to the network's height and half the frames (BatDetect2's `compute_spectrogram`), and
runs Net2DFast. Its outputs are the detection heatmap, the call sizes and the class probabilities without the
background class. The spectrogram stays out of the graph: PCEN is a recursive filter along time, which ONNX
runs as a Scan over frames, in float32; folded in that way (with the STFT as a strided convolution), the
front-end cost the same as NumPy's and its outputs were 200 times further from batdetect2's.

The export is checked against batdetect2's own PyTorch inference on noise and chirps: the calls its
post-processing finds and edge.inference.calls.decode finds, their times and probabilities.

Usage: python -m tools.models.convert_batdetect2 [--out models/batdetect2-uk]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import io
import os
import sys
from pathlib import Path

import numpy as np

from edge.inference.manifest import file_sha256, load_manifest

OPSET = 17
PACKAGE = "batdetect2"
MODEL_FILE = "models/Net2DFast_UK_same.pth.tar"
# The graph's results do not depend on these, but its bytes might: pinned before torch is imported.
PINNED_ENVIRONMENT = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}


def pin_environment() -> None:
    """Run this tool again with PINNED_ENVIRONMENT, unless this process already has it."""
    if all(os.environ.get(name) == value for name, value in PINNED_ENVIRONMENT.items()):
        return
    os.environ.update(PINNED_ENVIRONMENT)
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def package_file(relative: str) -> Path:
    """A file of the installed package, found without importing it (its __init__ loads the model)."""
    for entry in md.distribution(PACKAGE).files or ():
        if str(entry).endswith(relative):
            return Path(entry.locate())
    raise SystemExit(f"{relative} not found: pip install --no-deps batdetect2==1.3.1 (see pyproject's convert-bats)")


def build_graph():
    import torch
    import torch.nn.functional as F
    from batdetect2.utils.detector_utils import load_model

    net, params = load_model(str(package_file(MODEL_FILE)), device=torch.device("cpu"))

    class CallGraph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.height = int(params["spec_height"] * params["resize_factor"])

        def forward(self, spectrogram):
            denoised = torch.relu(spectrogram - spectrogram.mean(dim=-1, keepdim=True))
            resized = F.interpolate(
                denoised, size=(self.height, spectrogram.shape[-1] // 2), mode="bilinear", align_corners=False
            )
            out = self.net(resized)
            return out.pred_det, out.pred_size, out.pred_class[:, :-1]

    return CallGraph().eval(), params


def export(graph, bins: int) -> bytes:
    import torch

    example = torch.zeros(1, 1, bins, 1024)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            graph,
            (example,),
            buffer,
            input_names=["spectrogram"],
            output_names=["detection", "size", "classes"],
            dynamic_axes={
                "spectrogram": {0: "batch", 3: "frames"},
                "detection": {0: "batch", 3: "time"},
                "size": {0: "batch", 3: "time"},
                "classes": {0: "batch", 3: "time"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()


def reference_calls(audio: np.ndarray, threshold: float) -> list[tuple[float, float, float, float, float]]:
    """batdetect2's own calls for `audio` at 256 kHz, one chunk: (start, end, low, high, score)."""
    import torch
    from batdetect2 import api
    from batdetect2.utils import detector_utils

    config = api.get_config(detection_threshold=threshold)
    with torch.no_grad():
        pred, _, _ = detector_utils._process_audio_array(audio, 256000, api.MODEL, config, torch.device("cpu"))
    columns = ("start_times", "end_times", "low_freqs", "high_freqs", "det_probs")
    return sorted(zip(*(pred[c].tolist() for c in columns), strict=True))


def check_parity(out: Path, rng: np.random.Generator) -> tuple[int, float]:
    """Calls found by batdetect2 and by the ONNX graph with edge's front-end and decoding on synthetic audio
    (noise, and noise with downward chirps): the same calls; returns their count and the largest difference
    of time (s) or score."""
    from edge.inference.calls import CallDetector

    detector = CallDetector(load_manifest(out))
    t = np.arange(128000) / 256000
    chirps = sum(
        np.sin(2 * np.pi * (80000 * (t - c) - 4e6 * (t - c) ** 2)) * ((t > c) & (t < c + 0.005))
        for c in (0.05, 0.15, 0.3, 0.42)
    )
    signals = [rng.normal(0, 0.01, 128000), 0.2 * chirps + rng.normal(0, 0.005, 128000)]
    count, worst = 0, 0.0
    for signal in signals:
        audio = signal.astype(np.float32)
        expected = reference_calls(audio, 0.01)
        got = sorted((c.start, c.end, c.low_freq, c.high_freq, c.score) for c in detector.calls(audio, 0.01))
        if len(got) != len(expected):
            raise SystemExit(f"parity check failed: {len(got)} calls, batdetect2 finds {len(expected)}")
        for a, b in zip(got, expected, strict=True):
            worst = max(worst, abs(a[0] - b[0]), abs(a[1] - b[1]), abs(a[4] - b[4]))
        count += len(got)
    if worst > 1e-3:
        raise SystemExit(f"parity check failed: max difference {worst:.2e} > 1e-3")
    return count, worst


# The English names of the UK's bats (the Bat Conservation Trust's), which a ranger reads; BatDetect2 names its
# classes by their scientific names alone.
COMMON_NAMES = {
    "Barbastellus barbastellus": "Barbastelle",
    "Eptesicus serotinus": "Serotine",
    "Myotis alcathoe": "Alcathoe bat",
    "Myotis bechsteinii": "Bechstein's bat",
    "Myotis brandtii": "Brandt's bat",
    "Myotis daubentonii": "Daubenton's bat",
    "Myotis mystacinus": "Whiskered bat",
    "Myotis nattereri": "Natterer's bat",
    "Nyctalus leisleri": "Leisler's bat",
    "Nyctalus noctula": "Noctule",
    "Pipistrellus nathusii": "Nathusius' pipistrelle",
    "Pipistrellus pipistrellus": "Common pipistrelle",
    "Pipistrellus pygmaeus": "Soprano pipistrelle",
    "Plecotus auritus": "Brown long-eared bat",
    "Plecotus austriacus": "Grey long-eared bat",
    "Rhinolophus ferrumequinum": "Greater horseshoe bat",
    "Rhinolophus hipposideros": "Lesser horseshoe bat",
}

MANIFEST = """\
# Read by edge at start-up: everything edge knows about this model.
name = "batdetect2-uk"
version = "{version}"
title = "BatDetect2 UK, Net2DFast_UK_same (FP32, ONNX)"
licence = "CC-BY-NC-4.0"
licence_file = "LICENSE"
attribution = "ATTRIBUTION.md"
file = "model.onnx"
sha256 = "{sha256}"
labels = "labels.txt"
# "Scientific name_English name" per line, in the order of the classes output.
label_format = "scientific_common"

[input]
kind = "spectrogram"
sample_rate = {sample_rate}
# BatDetect2 runs a recording in chunks of 3 s, each on its own; the graph takes any number of frames.
length = {length}
name = "spectrogram"
# UK bats call from about 20 kHz (noctule) to 110 kHz (lesser horseshoe): a stream recorded below 96 kHz holds
# little of that band, and is not given to the model.
min_source_rate = 96000

# edge.inference.calls computes the input: |STFT| of 2 ms frames every 0.5 ms, 10-120 kHz, then PCEN with
# librosa's defaults as BatDetect2 calls it (the magnitude times 2^31; sr = rate / 10 with librosa's hop of
# 512, so its 0.4 s time constant is 20 frames). The graph subtracts each bin's mean and resizes.
[input.spectrogram]
n_fft = {n_fft}
hop_length = {hop_length}
min_freq = {min_freq}
max_freq = {max_freq}
scale = 2147483648.0
pcen_time_frames = 20.0
pcen_gain = 0.98
pcen_bias = 2.0
pcen_power = 0.5
pcen_eps = 1e-6
resize = {resize}
width_multiple = {width_multiple}
height = {height}

[output]
kind = "calls"
name = "detection"

[output.calls]
detection_name = "detection"
size_name = "size"
classes_name = "classes"
nms_kernel = {nms_kernel}
top_k_per_second = {top_k}
# BatDetect2's API keeps peaks above 0.01; its command line takes the threshold as an argument, 0.3 in its
# README, which gives the calls listed with its example recordings.
threshold = 0.3
"""

ATTRIBUTION = """\
# BatDetect2 UK (Net2DFast_UK_same)

Model weights and class names: BatDetect2 by Oisin Mac Aodha, Santiago Martinez Balvanera and colleagues
(University of Edinburgh, University College London), licensed under CC BY-NC 4.0 (see LICENSE).
Non-commercial use only. Source code and model: https://github.com/macaodha/batdetect2

Mac Aodha, O., Martinez Balvanera, S., Damstra, E., Cooke, M., Eichinski, P., Browning, E., Barataud, M.,
Boughey, K., Coles, R., Giacomini, G., MacSwiney G., M. C., Obrist, M. K., Parsons, S., Sattler, T., &
Jones, K. E. (2022). Towards a General Approach for Bat Echolocation Detection and Classification. bioRxiv,
doi:10.1101/2022.12.14.520490.

Converted from `batdetect2/{source}` (PyPI package batdetect2 {version}) to ONNX by
`tools/models/convert_batdetect2.py` with torch {torch_version}: the network with BatDetect2's denoising and
resizing in front of it, and the class probabilities without the background class. The PCEN spectrogram
and the post-processing (non-maximum suppression, top-k, boxes) are edge's NumPy re-implementation
(edge.inference.calls), checked against batdetect2's PyTorch inference when converted and by the tests.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "models" / "batdetect2-uk")
    args = parser.parse_args()
    pin_environment()
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    graph, params = build_graph()
    n_fft = int(params["fft_win_length"] * params["target_samp_rate"])
    seconds = n_fft / params["target_samp_rate"]
    bins = round(params["max_freq"] * seconds) - round(params["min_freq"] * seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    onnx_path.write_bytes(export(graph, bins))
    (args.out / "labels.txt").write_text("".join(f"{name}_{COMMON_NAMES[name]}\n" for name in params["class_names"]))
    (args.out / "LICENSE").write_bytes(package_file("LICENSE.md").read_bytes())
    version = md.version(PACKAGE)
    (args.out / "manifest.toml").write_text(
        MANIFEST.format(
            version=version,
            sha256=file_sha256(onnx_path),
            sample_rate=params["target_samp_rate"],
            length=3 * params["target_samp_rate"],
            n_fft=n_fft,
            hop_length=n_fft - int(params["fft_overlap"] * n_fft),
            min_freq=params["min_freq"],
            max_freq=params["max_freq"],
            resize=params["resize_factor"],
            width_multiple=params["spec_divide_factor"],
            height=int(params["spec_height"] * params["resize_factor"]),
            nms_kernel=params["nms_kernel_size"],
            top_k=params["nms_top_k_per_sec"],
        )
    )
    (args.out / "ATTRIBUTION.md").write_text(
        ATTRIBUTION.format(source=MODEL_FILE, version=version, torch_version=torch.__version__.split("+")[0])
    )
    count, worst = check_parity(args.out, np.random.default_rng(0))
    size = onnx_path.stat().st_size / 1e6
    print(f"wrote {onnx_path} ({size:.1f} MB); {count} calls as batdetect2's, max difference {worst:.1e}")


if __name__ == "__main__":
    main()
