#!/usr/bin/env bash
# The main job, end to end: set up, then record a built-in sparse-reward env into a memory,
# consolidate it, save it, reload it and show what retrieval surfaces. No download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m hippogym demo "$@"
