#!/usr/bin/env bash
# CartPole-v1 parity (dense reward): hybrid vs uniform replay, same DQN hyperparameters (rl-zoo's).
# Reports the final return with 95% bootstrap CIs and the wall-time ratio hybrid/uniform.
# Env vars: SEEDS (5)  STEPS (50000)  CONS_EVERY (5000 env steps)  CONS_STEPS (50)  WORKERS (2)
#           OUT (runs/rl/cartpole; a path ending in .csv also gets one row per run)
# The seed's variables keep the seed's meaning (benchmarks/rl/seed_vars.py says how at start):
#   BATCH  SCHEDULE (periodic|interleaved|adaptive)  CONS_INTERVAL (env steps)  MIXTURE_RATIO
#   SCHED_START  SCHED_END  WARMUP (mixture ramp)  EVAL_EPS  LOG_INTERVAL
# Quick look: SEEDS=2 STEPS=10000 bash scripts/quick_cartpole.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
mapped="$("$py" benchmarks/rl/seed_vars.py quick_cartpole)"
mapfile -t args <<< "$mapped"
exec "$py" benchmarks/rl/cartpole_parity.py "${args[@]}" "$@"
