#!/usr/bin/env bash
# Rank-weighted vs raw reward weighting of the consolidator (reward_mode="rank" | "raw"):
#   1. the consolidation micro-benchmark (key-space quality on planted rare successes, binary and
#      heavy-tailed returns), then
#   2. the RL ablation on the sparse corridor (SB3 DQN; arms base = rank, raw; uniform for reference).
# Env vars: SEEDS (5)  STEPS (15000)  LENGTH (20)  MICRO_SEEDS (3)  CONS_EVERY (2000)  CONS_STEPS (50)
#           WORKERS (2)  OUT (runs/rl/rank_ablation)  SKIP_RL (unset; set to 1 for the micro part only)
# Quick look: SEEDS=2 STEPS=8000 MICRO_SEEDS=1 bash scripts/run_rank_ablation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/rl/rank_ablation}"
py="${PYTHON:-python3}"
"$py" benchmarks/rl/consolidation_micro.py --settings rank,raw --seeds "${MICRO_SEEDS:-3}" \
    --workers "${WORKERS:-2}" --out "$out/micro"
if [[ -z "${SKIP_RL:-}" ]]; then
    "$py" benchmarks/rl/ablations.py --arms uniform,base,raw --seeds "${SEEDS:-5}" --steps "${STEPS:-15000}" \
        --length "${LENGTH:-20}" --cons-every "${CONS_EVERY:-2000}" --cons-steps "${CONS_STEPS:-50}" \
        --workers "${WORKERS:-2}" --out "$out/rl"
fi
