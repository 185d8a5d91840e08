#!/usr/bin/env bash
# Success with perceived goals (what a robot gets) beside ground-truth goals (an upper bound), for
# insertion and grasp: the quickstart's policies plus two more diffusion training seeds, then
# `fmb bench perception` on the same sensor model. Results land under OUT (default runs/perceived).
# Usage: scripts/perceived_vs_truth.sh [OUT] [EPISODES]     (about 1.5 h on 2 idle cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/perceived}"
EPISODES="${2:-50}"
FMB=.venv/bin/fmb
mkdir -p "$OUT"

# Insertion: the quickstart (demonstrations, diffusion seed 0, BC), evaluated both ways.
$FMB quickstart --out "$OUT/insert" --eval-episodes "$EPISODES" --quiet
# Grasp: the same recipe with the grasp goal.
$FMB quickstart --out "$OUT/grasp" --task grasp --goal grasp --eval-episodes "$EPISODES" --quiet

# Two more diffusion seeds of the insertion recipe.
for seed in 1 2; do
  run="$OUT/insert/diffusion_seed$seed"
  $FMB train --data "$OUT/insert/demos" --out "$run" --goal tcp_goal --steps 2500 --seed "$seed" --quiet
  for goals in perceived truth; do
    for side in train test; do
      $FMB eval --policy "$run" --episodes "$EPISODES" --split family_holdout --side "$side" \
        --action-horizon 2 --goals "$goals" --json "$OUT/insert/eval_seed${seed}_${side}_${goals}.json" --quiet
    done
  done
done

# Perception on the default sensor model: scenes with a lying or standing peg, and held pegs.
$FMB bench perception --scenes 20 --json > "$OUT/perception_vertical_chain.json"
$FMB bench perception --scenes 20 --task insert --json > "$OUT/perception_insert.json"
