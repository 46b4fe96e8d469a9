"""Write the calls batdetect2's own PyTorch inference finds in the bat recordings of tests/data/bats, for
tests/models/test_batdetect2_parity.py to compare the ONNX model with where torch is not installed.

Every peak batdetect2 keeps at the API's threshold (0.01), not rounded: start and end (s), low and high
frequency (Hz), detection score and the 17 class probabilities, in batdetect2's order of calls.

Usage: python -m tools.models.batdetect2_reference [--out tests/data/bats/batdetect2-reference.json]
(needs the convert-bats extra)
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ROOT / "tests" / "data" / "bats"
THRESHOLD = 0.01


def reference_calls(path: Path) -> list[dict]:
    from batdetect2 import api

    config = api.get_config(detection_threshold=THRESHOLD, return_raw_preds=True)
    # With return_raw_preds, the chunks' calls merged into arrays, times from the start of the recording.
    calls = api.process_file(str(path), config=config)
    return [
        {
            "start": round(float(calls["start_times"][i]), 7),
            "end": round(float(calls["end_times"][i]), 7),
            "low_freq": round(float(calls["low_freqs"][i]), 3),
            "high_freq": round(float(calls["high_freqs"][i]), 3),
            "score": round(float(calls["det_probs"][i]), 7),
            "probabilities": [round(float(p), 7) for p in calls["class_probs"][:, i]],
        }
        for i in range(len(calls["det_probs"]))
    ]


def as_json(reference: dict) -> str:
    """JSON with one call a line."""
    head = json.dumps({k: v for k, v in reference.items() if k != "recordings"}, indent=1)[:-2]
    recordings = ",\n".join(
        f"  {json.dumps(name)}: [\n" + ",\n".join(f"   {json.dumps(call)}" for call in calls) + "\n  ]"
        for name, calls in reference["recordings"].items()
    )
    return f'{head},\n "recordings": {{\n{recordings}\n }}\n}}\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RECORDINGS / "batdetect2-reference.json")
    args = parser.parse_args()
    reference = {
        "made_by": f"batdetect2 {md.version('batdetect2')}, torch {md.version('torch').split('+')[0]}: "
        "python -m tools.models.batdetect2_reference",
        "threshold": THRESHOLD,
        "recordings": {path.name: reference_calls(path) for path in sorted(RECORDINGS.glob("*.wav"))},
    }
    args.out.write_text(as_json(reference))
    counts = {name: len(calls) for name, calls in reference["recordings"].items()}
    print(f"wrote {args.out}: {counts}")


if __name__ == "__main__":
    main()
