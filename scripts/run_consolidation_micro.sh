#!/usr/bin/env bash
# Consolidation micro-benchmark: how reward alignment, success precision (vs base rate) and
# effective rank evolve with consolidation steps on synthetic planted rare successes; steps/s.
# Env vars: SEEDS (3)  ROUNDS (10)  CHUNK (50 steps per consolidate call)  EPISODES (400)
#           SETTINGS (rank,raw,rw0)  WORKERS (2)  OUT (runs/rl/consolidation)
# Quick look: SEEDS=1 ROUNDS=4 CHUNK=25 bash scripts/run_consolidation_micro.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/rl/consolidation_micro.py --seeds "${SEEDS:-3}" --rounds "${ROUNDS:-10}" \
    --chunk "${CHUNK:-50}" --episodes "${EPISODES:-400}" --settings "${SETTINGS:-rank,raw,rw0}" \
    --workers "${WORKERS:-2}" --out "${OUT:-runs/rl/consolidation}" "$@"
