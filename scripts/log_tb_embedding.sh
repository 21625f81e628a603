#!/usr/bin/env bash
# Log the memory's keys (before/after consolidation) to TensorBoard's projector, with return and
# reward metadata, and save a PCA plot colored by return. Then view them with:
#   tensorboard --logdir runs/hippo_tb        (PROJECTOR tab)
# Env vars: LOGDIR (runs/hippo_tb)  PNG (runs/rl/embedding/embedding_pca.png)  EPISODES (150)
#           LENGTH (15)  CONS_STEPS (300)  SEED (0)
set -euo pipefail
cd "$(dirname "$0")/.."
logdir="${LOGDIR:-runs/hippo_tb}"
"${PYTHON:-python3}" benchmarks/rl/embedding_snapshot.py --logdir "$logdir" \
    --png "${PNG:-runs/rl/embedding/embedding_pca.png}" --episodes "${EPISODES:-150}" --length "${LENGTH:-15}" \
    --cons-steps "${CONS_STEPS:-300}" --seed "${SEED:-0}" "$@"
echo "next: tensorboard --logdir $logdir"
