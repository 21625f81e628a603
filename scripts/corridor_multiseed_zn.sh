#!/usr/bin/env bash
# Zero-noise (slip 0) sparse corridor, multi-seed: hybrid vs uniform replay (SB3 DQN).
# Env vars (defaults = the full run, ~15 min on 2 cores):
#   SEEDS (5)  LENGTHS (30,50,100)  STEPS (30000,50000,80000)  EPISODES (unset: use STEPS)
#   CONS_EVERY_STEPS (2000 transitions)  CONS_STEPS (50)  ARMS (uniform,hybrid)  WORKERS (2)
#   OUT (runs/rl/corridor_zn; a path ending in .csv also gets one row per run)
# The seed's variables keep the seed's meaning (benchmarks/rl/seed_vars.py says how at start):
#   LENGTH (one length, default 30)  CONS_EVERY (training EPISODES between consolidations)
# Faster (the seed's line, ~2 min): SEEDS=2 EPISODES=150 CONS_EVERY=10 CONS_STEPS=50 bash scripts/corridor_multiseed_zn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
mapped="$("$py" benchmarks/rl/seed_vars.py corridor_zn)"
mapfile -t args <<< "$mapped"
exec "$py" benchmarks/rl/sparse_corridor.py "${args[@]}" "$@"
