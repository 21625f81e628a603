#!/usr/bin/env bash
# Lint the two libraries with ruff (rules and per-file exceptions: [tool.ruff] in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m ruff check hippogym hippo_format "$@"
