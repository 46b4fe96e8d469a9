#!/usr/bin/env bash
# Set up, type-check the package (mypy, configured in pyproject.toml), then run the whole test suite (what CI
# runs); a type error fails the script before the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh test convert
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
