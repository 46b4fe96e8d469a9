#!/usr/bin/env bash
# Set up, lint and check the format (ruff), type-check the package (mypy), then run the whole test suite (what
# CI runs); each is configured in pyproject.toml, and a finding fails the script before the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh test convert
.venv/bin/ruff check edge tests tools
.venv/bin/ruff format --check edge tests tools
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
