#!/usr/bin/env bash
# Zero-noise (slip 0) sparse corridor, multi-seed: hybrid vs uniform replay (SB3 DQN).
# Env vars (defaults = the full run, ~15 min on 2 cores):
#   SEEDS (5)  LENGTHS (30,50,100)  STEPS (30000,50000,80000)  EPISODES (unset: use STEPS)
#   CONS_EVERY (2000)  CONS_STEPS (50)  ARMS (uniform,hybrid)  WORKERS (2)  OUT (runs/rl/corridor_zn)
# Faster: SEEDS=3 LENGTHS=30 EPISODES=200 CONS_EVERY=1000 CONS_STEPS=20 bash scripts/corridor_multiseed_zn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--seeds "${SEEDS:-5}" --lengths "${LENGTHS:-30,50,100}" --steps "${STEPS:-30000,50000,80000}"
      --slip 0 --cons-every "${CONS_EVERY:-2000}" --cons-steps "${CONS_STEPS:-50}"
      --arms "${ARMS:-uniform,hybrid}" --workers "${WORKERS:-2}" --out "${OUT:-runs/rl/corridor_zn}")
if [[ -n "${EPISODES:-}" ]]; then args+=(--episodes "$EPISODES"); fi
exec "${PYTHON:-python3}" benchmarks/rl/sparse_corridor.py "${args[@]}" "$@"
