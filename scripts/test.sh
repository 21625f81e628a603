#!/usr/bin/env bash
# The test suite: set up, then run every test (README, docs and examples included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m pytest "$@"
