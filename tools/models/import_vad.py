"""Copy the Silero VAD model out of the installed `silero-vad` package into models/silero-vad/.

The package ships several exports of the same network. We take `silero_vad_16k_sequence.onnx`: it runs a whole
block of 32 ms frames in one call and carries the LSTM state (h, c) in and out, so a push of 0.1 s or of a
minute costs one session run instead of one per frame (about 2.5 times less CPU here). The stock streaming
export `silero_vad.onnx` (one frame per call, state [2, batch, 128], where batch means independent streams, not
time) is the reference: this tool runs both on real speech and on noise and refuses to write anything unless
the per-frame probabilities agree.

The package is installed without torch, so nothing of it is imported: its files are found through its
distribution metadata.

Writes model.onnx, LICENSE (MIT, from the package's dist-info), ATTRIBUTION.md and speech.toml, the manifest
edge.screen.speech reads. It is not called manifest.toml because edge.inference.manifest.discover() takes every
directory with a manifest.toml for a bird classifier, and this model is not one.

Usage: python -m tools.models.import_vad [--out models/silero-vad] [--speech tests/data/3436-172162-0000.hq.ogg]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf
import soxr

from edge.inference.manifest import file_sha256
from edge.screen.speech import CONTEXT, FRAME, MANIFEST, RATE, STATE

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "silero-vad"
MODEL = "silero_vad/data/silero_vad_16k_sequence.onnx"
REFERENCE = "silero_vad/data/silero_vad.onnx"
TOLERANCE = 1e-5  # max |probability difference| between the two exports; 0.0 on the CPUs tried

SPEECH_TOML = """\
# Read by edge.speech at start-up (not named manifest.toml: that name marks a bird classifier for
# edge.manifest.discover). Written by {tool}; do not edit by hand.
name = "silero-vad"
version = "{version}"
title = "Silero VAD {version} (16 kHz, sequence export, ONNX)"
licence = "MIT"
licence_file = "LICENSE"
attribution = "ATTRIBUTION.md"
file = "model.onnx"
sha256 = "{sha256}"
made_by = "{tool}"

[source]
package = "{package}"
package_version = "{version}"
wheel_sha256 = "{wheel_sha256}"
file = "{source}"
reference = "{reference}"

[input]
sample_rate = {rate}
frame = {frame}      # new samples per frame (32 ms)
context = {context}     # samples of the previous frame put before each frame (zeros for the first)
name = "input"     # float32 [frames, {row}]: one row per frame, context then frame
state = ["h", "c"] # float32 {state} each: zeros at the start of a stream, then the previous call's hn, cn

[output]
name = "speech_probs"  # float32 [frames]: probability of speech in each frame, 0..1
state = ["hn", "cn"]
"""

ATTRIBUTION = """\
# Silero VAD

Voice activity detector by the Silero Team (https://github.com/snakers4/silero-vad), MIT licence (see LICENSE).
Silero Team (2024). Silero VAD: pre-trained enterprise-grade Voice Activity Detector (VAD), Number Detector
and Language Classifier. GitHub repository.

`model.onnx` is a byte-for-byte copy, made by `tools/import_vad.py`, of
`{source}` from the PyPI package {package} {version}.
Before copying, the tool checks that it gives the same per-frame speech probabilities as the package's stock
streaming export `{reference}` on real speech and on noise (max difference below {tolerance:g}; the exact
figure depends on the CPU, so the tool prints it).

edge uses it to keep human speech out of saved audio clips: speech is counted, never recorded.
"""


def package_file(dist: md.Distribution, name: str) -> Path:
    path = Path(dist.locate_file(name))
    if not path.is_file():
        raise SystemExit(f"{name} not found in {PACKAGE} {dist.version} (looked at {path})")
    return path


def licence_file(dist: md.Distribution) -> Path:
    found = [f for f in dist.files or () if f.name == "LICENSE" and ".dist-info" in str(f)]
    if not found:
        raise SystemExit(f"{PACKAGE} {dist.version}: no LICENSE in its dist-info")
    return Path(dist.locate_file(found[0]))


def wheel_sha256(dist: md.Distribution) -> str:
    """The hash pip recorded for the wheel it installed, when it recorded one (empty otherwise)."""
    text = dist.read_text("direct_url.json")
    if not text:
        return ""
    return json.loads(text).get("archive_info", {}).get("hashes", {}).get("sha256", "")


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_contract(model: ort.InferenceSession) -> None:
    """The model must have exactly the inputs and outputs edge.screen.speech feeds and reads."""
    inputs = {i.name: i.shape for i in model.get_inputs()}
    outputs = [o.name for o in model.get_outputs()]
    expected = {"input": ["sequence_length", CONTEXT + FRAME], "h": list(STATE), "c": list(STATE)}
    if inputs != expected or outputs != ["speech_probs", "hn", "cn"]:
        raise SystemExit(f"unexpected model I/O: inputs {inputs}, outputs {outputs}")


def frames_of(audio: np.ndarray) -> np.ndarray:
    """[frames, FRAME] of 16 kHz audio, the last one zero-padded."""
    count = -(-len(audio) // FRAME)
    frames = np.zeros(count * FRAME, np.float32)
    frames[: len(audio)] = audio
    return frames.reshape(count, FRAME)


def reference_probabilities(model: ort.InferenceSession, frames: np.ndarray) -> np.ndarray:
    """The stock export, one frame per call, the way the package's own wrapper drives it."""
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros(CONTEXT, np.float32)
    out = []
    for frame in frames:
        prob, state = model.run(
            None, {"input": np.concatenate([context, frame])[None], "state": state, "sr": np.array(RATE, np.int64)}
        )
        out.append(prob[0, 0])
        context = frame[-CONTEXT:]
    return np.array(out, np.float32)


def sequence_probabilities(model: ort.InferenceSession, frames: np.ndarray, block: int = 50) -> np.ndarray:
    """The sequence export in blocks of `block` frames, so that the state hand-over between calls is tested."""
    contexts = np.concatenate([np.zeros((1, CONTEXT), np.float32), frames[:-1, -CONTEXT:]])
    rows = np.concatenate([contexts, frames], axis=1)
    h = c = np.zeros(STATE, np.float32)
    out = []
    for first in range(0, len(rows), block):
        probs, h, c = model.run(None, {"input": rows[first : first + block], "h": h, "c": c})
        out.append(probs)
    return np.concatenate(out)


def parity(model_path: Path, reference_path: Path, speech: Path) -> float:
    audio, rate = sf.read(str(speech), dtype="float32", always_2d=True)
    audio = soxr.resample(audio.mean(axis=1), rate, RATE)
    noise = np.random.default_rng(0).normal(0, 0.05, 10 * RATE).astype(np.float32)
    model = session(model_path)
    check_contract(model)
    reference = session(reference_path)
    worst = 0.0
    for signal in (audio, noise):
        frames = frames_of(signal)
        ours, theirs = sequence_probabilities(model, frames), reference_probabilities(reference, frames)
        worst = max(worst, float(np.abs(ours - theirs).max()))
    if worst > TOLERANCE:
        raise SystemExit(f"{MODEL} and {REFERENCE} disagree: max |probability difference| {worst:.2e}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "silero-vad")
    parser.add_argument(
        "--speech",
        type=Path,
        default=ROOT / "tests" / "data" / "3436-172162-0000.hq.ogg",
        help="A recording of speech for the parity check.",
    )
    args = parser.parse_args()
    dist = md.distribution(PACKAGE)
    model, reference = package_file(dist, MODEL), package_file(dist, REFERENCE)
    worst = parity(model, reference, args.speech)
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, args.out / "model.onnx")
    shutil.copyfile(licence_file(dist), args.out / "LICENSE")
    # The path the committed files carry, kept so that a rebuild gives their bytes (tools/README.md)
    names = dict(tool="tools/import_vad.py", package=PACKAGE, version=dist.version, source=MODEL, reference=REFERENCE)
    (args.out / MANIFEST).write_text(
        SPEECH_TOML.format(
            **names,
            sha256=file_sha256(args.out / "model.onnx"),
            wheel_sha256=wheel_sha256(dist),
            rate=RATE,
            frame=FRAME,
            context=CONTEXT,
            row=CONTEXT + FRAME,
            state=list(STATE),
        )
    )
    (args.out / "ATTRIBUTION.md").write_text(ATTRIBUTION.format(**names, tolerance=TOLERANCE))
    print(
        f"wrote {args.out} from {PACKAGE} {dist.version}; max |probability difference| to the stock export {worst:.1e}"
    )


if __name__ == "__main__":
    main()
