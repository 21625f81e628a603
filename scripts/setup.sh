#!/usr/bin/env bash
# Install hippogym and everything its tests and demo need, from scratch, into the current Python.
# torch is pinned first: this machine carries a local CPU wheel of 2.13.0, while a plain or newer
# `torch` would pull gigabytes of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
    "$PY" -m pip install --quiet "torch==2.13.0"
fi
"$PY" -m pip install --quiet -e ".[dev]"
