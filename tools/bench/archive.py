"""The archive section of the benchmark: `edge replay` over an archive of recordings, side by side in one run.

The archive is made of the real recordings in tests/data at 48 kHz, cut into files of `--file-minutes` written
by a dozen recorders (AudioMoth-style names in a folder each). It is replayed (default model, 5 s windows every
2.5 s, JSON lines out) by one process (`--workers 1`), by a pool of 1 and of 2 worker processes, and, when Ray
is installed, by 2 actors on a 2-node Ray cluster started on this machine (a head and a second node, one CPU
each). Each replay is a process of its own timed from start to exit (imports, model loading and worker start
included). Throughput is audio hours per wall hour; the speed-up and the scaling efficiency (speed-up per
worker) are against the single process. Peak RSS is the largest high-water mark (VmHWM) of any one worker,
sampled from /proc while the replay runs. From the single process's throughput and the overheads measured, a
projection: what a cluster of many nodes would take to replay a season.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
RECORDERS = 12
SEASON_HOURS = 60_000  # 50 AudioMoths, 12 h a day, 100 days
PROJECTED_NODES, PROJECTED_CORES = 20, 8

# A pool of one worker process is reachable from the library alone: the command runs one worker in-process.
POOL_OF_ONE = """
import sys
from datetime import UTC
from pathlib import Path
from edge.app.job import replay
from edge.app.replay import ReplayOptions
options = ReplayOptions.build(window=5.0, hop=2.5, crop_stride=1.0, sensitivity=1.0, min_conf=0.25, top_k=10,
                              channel=None, naive_zone=UTC, threads=1, formats=("jsonl",))
replay([Path(sys.argv[1])], Path(sys.argv[2]), ["birdnet-v2.4"], Path(sys.argv[3]), options, workers=1,
       in_process=False)
"""


@dataclass
class Measured:
    name: str
    workers: int
    wall: float
    audio_seconds: float
    worker_rss_mb: float

    @property
    def throughput(self) -> float:
        """Audio hours per wall hour."""
        return self.audio_seconds / self.wall


def make_archive(folder: Path, minutes: float, file_minutes: float) -> tuple[Path, float]:
    """`minutes` of audio from tests/data at 48 kHz, in files of `file_minutes` spread over RECORDERS folders."""
    from tools.bench.__main__ import one_pass  # the same audio as every other section

    rate = 48000
    once = one_pass(rate)
    per_file = int(file_minutes * 60 * rate)
    files = max(1, round(minutes / file_minutes))
    audio = np.tile(once, int(np.ceil(files * per_file / len(once))))
    archive = folder / "archive"
    for index in range(files):
        take, recorder = divmod(index, RECORDERS)  # each recorder's files back to back from 06:00 UTC
        start = time.gmtime(1714543200 + take * round(file_minutes * 60))
        name = time.strftime("%Y%m%d_%H%M%S.WAV", start)
        path = archive / f"moth{recorder + 1:02d}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio[index * per_file : (index + 1) * per_file], rate, subtype="PCM_16")
    return archive, files * per_file / rate


def replay_command(archive: Path, out: Path, *options: str) -> list[str]:
    command = [sys.executable, "-m", "edge", "replay", str(archive), "--out", str(out), "--format", "jsonl"]
    return [*command, "--quiet", *options]


def pool_of_one(archive: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", POOL_OF_ONE, str(archive), str(ROOT / "models"), str(out)]


def local(archive: Path, out: Path, workers: int) -> list[str]:
    return replay_command(archive, out, "--workers", str(workers))


def measure(name: str, workers: int, command: list[str], seconds: float, workers_are: str) -> Measured:
    """The command run to completion, the peak RSS of its workers sampled on the way: `workers_are` "self"
    (the command's own process), "children" (its descendants) or "ray" (Ray's worker processes)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    chosen: dict[str, Callable[[], list[int]]] = {
        "self": lambda: [process.pid],
        "children": lambda: descendants(process.pid),
        "ray": lambda: [pid for pid, cmdline in processes() if cmdline.startswith("ray::")],
    }
    with peak_rss(chosen[workers_are]) as peak:
        _, stderr = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {stderr.decode()[-2000:]}")
    return Measured(name, workers, wall, seconds, peak())


@contextmanager
def peak_rss(chosen: Callable[[], list[int]]) -> Iterator[Callable[[], float]]:
    """While the block runs, the largest VmHWM (MB, a high-water mark: sampling now and then finds it) of the
    processes `chosen()` lists. Sampled every second: a replay's workers live as long as it does, and the
    sampling must not take the CPU the replay is measured on."""
    best = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            for pid in chosen():
                best[0] = max(best[0], vm_hwm_mb(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: best[0]
    finally:
        stop.set()
        thread.join()


def processes() -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found.append((int(entry.name), cmdline))
    return found


def vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(root: int) -> list[int]:
    """The processes under `root`, from one pass over /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pids = children.get(todo.pop(), [])
        found += pids
        todo += pids
    return found


def archive_table(minutes: float, file_minutes: float, repeats: int = 2) -> str:
    """The section's measurements, as the table and projection it prints. Each way is run `repeats` times, the
    ways taking turns, and its fastest run kept: on a shared machine a neighbour's burst slows one run, not
    every run of one way."""
    with tempfile.TemporaryDirectory() as tmp, ray_cluster() as cluster:
        folder = Path(tmp)
        archive, seconds = make_archive(folder, minutes, file_minutes)
        ways = [
            ("one process (--workers 1)", 1, local(archive, folder / "one", 1), "self"),
            (
                "1 worker process",
                1,
                [sys.executable, "-c", POOL_OF_ONE, str(archive), str(ROOT / "models"), str(folder / "pool1")],
                "children",
            ),
            ("2 worker processes (--workers 2)", 2, local(archive, folder / "two", 2), "children"),
        ]
        if cluster is not None:
            command = replay_command(archive, folder / "ray", "--ray", cluster.address, "--workers", "2")
            ways.append(("2-node Ray cluster (2 actors)", 2, command, "ray"))
        best: dict[str, Measured] = {}
        for _ in range(repeats):
            for name, workers, command, workers_are in ways:
                shutil.rmtree(folder / "pool1", ignore_errors=True)  # the library call has no --fresh
                m = measure(name, workers, [*command, "--fresh"] if "-m" in command else command, seconds, workers_are)
                if name not in best or m.wall < best[name].wall:
                    best[name] = m
        same = {sorted_lines(folder / name) for name in ("one", "pool1", "two", "ray") if (folder / name).exists()}
        files = len(list(archive.rglob("*.WAV")))
        return render(list(best.values()), seconds, files, identical=len(same) == 1, start=start_up(folder))


def sorted_lines(out: Path) -> tuple[str, ...]:
    return tuple(sorted((out / "detections.jsonl").read_text().splitlines()))


@contextmanager
def ray_cluster() -> Iterator[Any]:
    """A 2-node cluster started here as the tests start it, for the block; None without Ray."""
    if importlib.util.find_spec("ray") is None:
        print("archive: Ray is not installed (bash tools/setup.sh cluster): no cluster row")
        yield None
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from support.ray_cluster import RayCluster

    cluster = RayCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


def start_up(folder: Path) -> float:
    """Wall seconds of `edge replay` of a 1 s file in one process: imports, model loading, writing."""
    from tools.bench.__main__ import RECORDINGS

    audio, rate = sf.read(str(ROOT / "tests" / "data" / RECORDINGS[0]), dtype="float32")
    path = folder / "one_second.wav"
    sf.write(str(path), audio[:rate], rate, subtype="PCM_16")
    started = time.perf_counter()
    subprocess.run(replay_command(path, folder / "start", "--workers", "1"), cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def render(runs: list[Measured], seconds: float, files: int, identical: bool, start: float) -> str:
    single = runs[0]
    lines = [
        f"archive: {files} files, {seconds / 3600:.2f} h of audio; detection files the same after sorting: {identical}",
        f"  {'':36}{'wall s':>8}{'audio h/h':>11}{'speed-up':>10}{'efficiency':>12}{'worker RSS':>12}",
    ]
    for m in runs:
        speedup = m.throughput / single.throughput
        lines.append(
            f"  {m.name:36}{m.wall:8.1f}{m.throughput:11.0f}{speedup:9.2f}x{speedup / m.workers:12.2f}"
            f"{m.worker_rss_mb:9.0f} MB"
        )
    local = next((m for m in runs if m.name.startswith("2 worker")), None)
    spread = next((m for m in runs if "Ray" in m.name), None)
    if local and spread:
        extra = (spread.wall - local.wall) / files
        lines.append(f"  Ray against 2 local worker processes: {extra * 1000:+.0f} ms per file ({files} files)")
    lines += projection(runs, start)
    return "\n".join(lines)


def projection(runs: list[Measured], start: float) -> list[str]:
    """A season on PROJECTED_NODES nodes of PROJECTED_CORES cores: the single process's throughput once started
    (its start-up taken off), per worker, times the workers, times the scaling efficiency measured here with
    the most workers (which holds the per-run overheads of that pool), plus one start-up."""
    single = runs[0]
    per_core = single.audio_seconds / max(single.wall - start, 1e-9)  # audio s per wall s of one busy core
    scaled = max((m for m in runs if m.workers > 1), key=lambda m: (m.workers, m.throughput), default=single)
    efficiency = scaled.throughput / single.throughput / scaled.workers
    workers = PROJECTED_NODES * PROJECTED_CORES
    hours = start / 3600 + SEASON_HOURS / (per_core * workers * efficiency)
    return [
        f"start-up (imports, models): {start:.1f} s; one core once started: {per_core:.0f} audio h per wall h",
        f"projection: {SEASON_HOURS:,} h of audio (50 AudioMoths, 12 h a day, 100 days): one core "
        f"{SEASON_HOURS / per_core / 24:.1f} days; {PROJECTED_NODES} nodes x {PROJECTED_CORES} cores = {workers} "
        f"workers at the efficiency of {scaled.name} ({efficiency:.2f}): {hours:.1f} h",
    ]
