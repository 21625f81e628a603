#!/usr/bin/env bash
# Curriculum corridor: retention of earlier lengths and regret, hybrid vs uniform (SB3 DQN).
# The recipe is in docs/curriculum.md.
# Env vars: SEEDS (5)  STEPS (60000)  LENGTHS (10,20,30,50)  CONS_EVERY_STEPS (2000 transitions)
#           CONS_STEPS (50)  WORKERS (2)  OUT (runs/rl/curriculum; a .csv path also gets one row per run)
# The seed's variables keep the seed's meaning (benchmarks/rl/seed_vars.py says how at start):
#   EPISODES  LENGTH  MIN_LENGTH  LENGTH_STEP (lengths MIN_LENGTH..LENGTH by LENGTH_STEP)
#   CONS_EVERY (training EPISODES between consolidations)  SUCCESS_WINDOW  SUCCESS_THRESHOLD
# Quick look: SEEDS=2 STEPS=15000 LENGTHS=8,14,20 bash scripts/corridor_curriculum.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
mapped="$("$py" benchmarks/rl/seed_vars.py corridor_curriculum)"
mapfile -t args <<< "$mapped"
exec "$py" benchmarks/rl/curriculum.py "${args[@]}" "$@"
