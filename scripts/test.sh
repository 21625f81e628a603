#!/usr/bin/env bash
# The test suite: set up, then run every test (README, docs and docstring examples included).
# HIPPOGYM_SKIP_SETUP=1 skips the install step (CI has just done it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${HIPPOGYM_SKIP_SETUP:-0}" != 1 ]]; then
    bash scripts/setup.sh
fi
exec "${PYTHON:-python3}" -m pytest "$@"
