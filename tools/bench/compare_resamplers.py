"""Which resampler serves BirdNET better: segment precision and recall on labelled soundscapes, and false
detections on noise-only recordings, each recording brought to the rates field recorders write.

Every recording is converted once (libsoxr, high quality) to each rate, then analysed by `edge replay --window 3
--hop 3` (BirdNET-Analyzer's segmentation) with each resampler, which takes it on to BirdNET's 48 kHz.
- Labelled: Raven selection tables beside each recording (`<stem>.Table.1.selections.txt`), one species boxed
  by hand. A 3 s segment is a true one when a box overlaps it; a detection of that species at >= --min-conf
  in a segment is the prediction. Other species are not boxed, so they are not scored.
- Noise-only: any animal detected at >= --min-conf is false (BirdNET's human, dog, engine, siren, noise...
  classes are not animals and are not counted).

Usage: python -m tools.bench.compare_resamplers --labelled DIR --noise FILE... [--rates 22050,32000,44100]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf
import soxr

from edge.audio.resample import RESAMPLERS

NOT_ANIMALS = {
    "Human vocal",
    "Human non-vocal",
    "Human whistle",
    "Dog",
    "Engine",
    "Environmental",
    "Fireworks",
    "Gun",
    "Noise",
    "Power tools",
    "Siren",
}


def at_rate(source: Path, folder: Path, rate: int) -> Path:
    audio, original = sf.read(str(source), dtype="float32", always_2d=True)
    target = folder / f"{source.stem}@{rate}.wav"
    sf.write(str(target), soxr.resample(audio.mean(axis=1), original, rate, quality="VHQ"), rate, subtype="FLOAT")
    return target


def replay(folder: Path, out: Path, resampler: str, min_conf: float) -> list[dict]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "replay",
            str(folder),
            "--window",
            "3",
            "--hop",
            "3",
            "--min-conf",
            str(min_conf),
            "--top-k",
            "6522",
            "--format",
            "jsonl",
            "--out",
            str(out),
            "--resampler",
            resampler,
            "--quiet",
        ],
        check=True,
        capture_output=True,
    )
    return [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]


def boxes(table: Path) -> tuple[str, list[tuple[float, float]]]:
    rows = list(csv.DictReader(table.open(), delimiter="\t"))
    return rows[0]["Species"], [(float(r["Begin Time (s)"]), float(r["End Time (s)"])) for r in rows]


def segment_scores(recordings: dict[str, Path], detections: list[dict]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) over every recording's 3 s segments."""
    tp = fp = fn = 0
    for stem, table in recordings.items():
        species, labelled = boxes(table)
        found = {
            round(d["start_s"] / 3)
            for d in detections
            if Path(d["source"]).stem.split("@")[0] == stem and d["scientific_name"] == species
        }
        segments = int(sf.info(str(table.parent / f"{stem}.mp3")).duration // 3) + 1
        truth = {k for k in range(segments) if any(b < 3 * k + 3 and e > 3 * k for b, e in labelled)}
        tp, fp, fn = tp + len(found & truth), fp + len(found - truth), fn + len(truth - found)
    return tp, fp, fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", type=Path, required=True)
    parser.add_argument("--noise", type=Path, nargs="+", required=True)
    parser.add_argument("--rates", default="22050,32000,44100")
    parser.add_argument("--noise-rates", default="8000,16000,22050,32000,44100")
    parser.add_argument("--min-conf", type=float, default=0.25)
    args = parser.parse_args()
    tables = {t.name.split(".")[0]: t for t in sorted(args.labelled.glob("*.Table.1.selections.txt"))}
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"| labelled, {len(tables)} recordings | " + " | ".join(f"{r}: P / R (TP FP FN)" for r in RESAMPLERS) + " |"
        )
        for rate in map(int, args.rates.split(",")):
            folder = Path(tmp) / f"labelled{rate}"
            folder.mkdir()
            for stem in tables:
                at_rate(args.labelled / f"{stem}.mp3", folder, rate)
            cells = []
            for resampler in RESAMPLERS:
                tp, fp, fn = segment_scores(tables, replay(folder, folder / resampler, resampler, args.min_conf))
                cells.append(f"{tp / max(1, tp + fp):.3f} / {tp / max(1, tp + fn):.3f} ({tp} {fp} {fn})")
            print(f"| {rate / 1000:g} kHz | " + " | ".join(cells) + " |", flush=True)
        print("| noise-only | " + " | ".join(f"{r}: false animal detections" for r in RESAMPLERS) + " |")
        for rate in map(int, args.noise_rates.split(",")):
            folder = Path(tmp) / f"noise{rate}"
            folder.mkdir()
            seconds = sum(sf.info(str(at_rate(path, folder, rate))).duration for path in args.noise)
            counts = [
                sum(
                    d["scientific_name"] not in NOT_ANIMALS
                    for d in replay(folder, folder / resampler, resampler, args.min_conf)
                )
                for resampler in RESAMPLERS
            ]
            print(f"| {rate / 1000:g} kHz, {seconds:.0f} s | " + " | ".join(map(str, counts)) + " |", flush=True)


if __name__ == "__main__":
    main()
