#!/usr/bin/env bash
# Set up and replay a bundled field recording on the default model (BirdNET V2.4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/edge replay tests/data/maad_spinetail.wav --out edge-out --fresh "$@"
