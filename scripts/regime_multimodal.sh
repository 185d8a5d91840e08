#!/usr/bin/env bash
# Issue 16, regime 1: multimodal demonstrations. The insertion expert draws one of the section's
# fitting turns per episode (`--expert-modes all`: a double square goes in at 0 or 180 deg, a star
# at any of five turns), 100 demonstrations on the train side of family_holdout with the
# quickstart's cameras and cloud; then `fmb bench ablation` trains the diffusion policy and BC on
# them (the quickstart's recipe: small, tcp_goal, 2500 / 2000 steps) and evaluates both on seen
# families, held-out families and novel placements (perceived goals unless GOALS says otherwise).
# The unimodal reference (`--expert-modes nearest`) is the quickstart's. Each training seed is its
# own ablation folder ($OUT/seed_K); every stage is reused by a rerun.
# Environment: GOALS (evaluation goals, default perceived), GOAL (what the policies are conditioned
# on, default tcp_goal; `hole` names no turn: tcp_goal is the hand's pose at the turn *nearest* the
# start, which the turned demonstrations contradict), MODES (the expert's modes, default all;
# nearest = the unimodal reference with the same recipe).
# Usage: [GOAL=hole] [MODES=nearest] scripts/regime_multimodal.sh [OUT] [EPISODES] [SEEDS] [VARIANTS]
#        (one seed, plain + bc: about an hour on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/regime_multimodal}"
EPISODES="${2:-50}"
SEEDS="${3:-0}"
VARIANTS="${4:-plain,bc}"
GOALS="${GOALS:-perceived}"
GOAL="${GOAL:-tcp_goal}"
MODES="${MODES:-all}"
FMB=.venv/bin/fmb
mkdir -p "$OUT"
stage() { echo "[$(date +%T)] $*"; }

stage "collecting 100 insertion demonstrations (expert modes: $MODES) into $OUT/demos"
$FMB sim collect --task insert --episodes 100 --split family_holdout --side train --expert-modes "$MODES" \
  --cameras side_1,side_2,wrist --point-cloud 4096 --out "$OUT/demos" --workers 2 --quiet > "$OUT/collect.json"
$FMB sim stats "$OUT/demos" > "$OUT/demos_stats.json"

for seed in $SEEDS; do
  stage "ablation, training seed $seed: $VARIANTS"
  $FMB bench ablation --data "$OUT/demos" --out "$OUT/seed_$seed" --seed "$seed" --variants "$VARIANTS" \
    --episodes "$EPISODES" --goals "$GOALS" --goal "$GOAL" --quiet
done
stage "done: $OUT/seed_*/ablation.md"
