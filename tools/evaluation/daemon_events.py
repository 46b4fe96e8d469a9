"""The daemon's events over a folder of recordings, for `edge evaluate`.

`edge run` watches the folder (each file left in place, each its own recording: no joining across files) with
a configuration written to `--out`, until every audio file in it is analysed or quarantined, then is stopped
as systemd stops it. Its daily event files stay under `--out` (records/events), which `edge evaluate
--detections OUT` reads. The settings are the daemon's defaults but for `--window`, `--hop` and
`--thresholds-file`; any other setting can be given as an EDGE_ variable (EDGE_SMOOTHING__END_AFTER=2.5).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

from edge.sources.files import AUDIO_SUFFIXES

SETTLED = ("recording_done", "recording_quarantined")


def write_config(out: Path, recordings: Path, args: argparse.Namespace) -> Path:
    lines = [
        f"data_dir = {json.dumps(str(out))}",
        'box_id = "evaluation"',
        "[source]",
        'type = "folder"',
        f"path = {json.dumps(str(recordings.resolve()))}",
        'after = "keep"',
        "settle_seconds = 1",
        "rescan_seconds = 2",
        "join_files = false",
    ]
    if args.window is not None or args.hop is not None:
        lines.append("[window]")
        lines += [f"{name} = {value}" for name, value in (("seconds", args.window), ("hop", args.hop)) if value]
    if args.thresholds_file is not None:
        lines += ["[species]", f"thresholds_file = {json.dumps(str(args.thresholds_file.resolve()))}"]
    path = out / "edge.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_daemon(config: Path, expected: int, log_path: Path) -> None:
    """`edge run` until `expected` files are settled (the daemon's own log says so), then SIGTERM."""
    command = [sys.executable, "-m", "edge", "run", "--config", str(config)]
    settled = 0
    with log_path.open("w", encoding="utf-8") as log:
        daemon = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        assert daemon.stdout is not None
        try:
            for line in daemon.stdout:
                log.write(line)
                entry = json.loads(line) if line.startswith("{") else {}
                if entry.get("event") in SETTLED:
                    settled += 1
                    print(f"{settled}/{expected} {entry['event']}: {entry.get('file')}", file=sys.stderr)
                if settled >= expected:
                    break
        finally:  # done, interrupted or failed: the daemon stops as systemd stops it, its last lines kept
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            log.writelines(daemon.stdout)
            code = daemon.wait()
    if settled < expected or code != 0:
        raise SystemExit(f"edge run exited {code} after {settled} of {expected} files; see {log_path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.evaluation.daemon_events", description=__doc__.splitlines()[0]
    )
    parser.add_argument("recordings", type=Path, help="Folder of recordings (sub-folders too).")
    parser.add_argument("--out", type=Path, required=True, help="A new or empty folder.")
    parser.add_argument("--window", type=float, help="Analysis window, seconds (default: the daemon's).")
    parser.add_argument("--hop", type=float, help="Seconds between window starts (default: the daemon's).")
    parser.add_argument("--thresholds-file", type=Path, help="Per-species thresholds ([species] thresholds_file).")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty: the daemon would skip the files an earlier run analysed")
    files = [p for p in args.recordings.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
    if not files:
        parser.error(f"{args.recordings}: no audio files")
    args.out.mkdir(parents=True, exist_ok=True)
    config = write_config(args.out, args.recordings, args)
    run_daemon(config, len(files), args.out / "daemon.log")
    print(f"events of {len(files)} recordings in {args.out / 'records' / 'events'}")


if __name__ == "__main__":
    main()
