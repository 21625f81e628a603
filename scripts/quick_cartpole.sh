#!/usr/bin/env bash
# CartPole-v1 parity (dense reward): hybrid vs uniform replay, same DQN hyperparameters (rl-zoo's).
# Reports the final return with 95% bootstrap CIs and the wall-time ratio hybrid/uniform.
# Env vars: SEEDS (5)  STEPS (50000)  CONS_EVERY (5000)  CONS_STEPS (50)  WORKERS (2)  OUT (runs/rl/cartpole)
# Quick look: SEEDS=2 STEPS=10000 bash scripts/quick_cartpole.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/rl/cartpole_parity.py --seeds "${SEEDS:-5}" --steps "${STEPS:-50000}" \
    --cons-every "${CONS_EVERY:-5000}" --cons-steps "${CONS_STEPS:-50}" --workers "${WORKERS:-2}" \
    --out "${OUT:-runs/rl/cartpole}" "$@"
