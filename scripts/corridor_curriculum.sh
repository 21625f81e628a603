#!/usr/bin/env bash
# Curriculum corridor: retention of earlier lengths and regret, hybrid vs uniform (SB3 DQN).
# The recipe is in docs/curriculum.md.
# Env vars: SEEDS (5)  STEPS (60000)  LENGTHS (10,20,30,50)  CONS_EVERY (2000)  CONS_STEPS (50)
#           WORKERS (2)  OUT (runs/rl/curriculum)
# Quick look: SEEDS=2 STEPS=15000 LENGTHS=8,14,20 bash scripts/corridor_curriculum.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/rl/curriculum.py --seeds "${SEEDS:-5}" --steps "${STEPS:-60000}" \
    --lengths "${LENGTHS:-10,20,30,50}" --cons-every "${CONS_EVERY:-2000}" --cons-steps "${CONS_STEPS:-50}" \
    --workers "${WORKERS:-2}" --out "${OUT:-runs/rl/curriculum}" "$@"
