#!/usr/bin/env bash
# Success with perceived goals (what a robot gets) beside ground-truth goals (an upper bound), for
# insertion and grasp, in this order: the insertion quickstart's policies, the same without the
# hand-eye refinement, the diffusion policy on novel board placements and on the procedural split's
# sampled pegs, `fmb bench perception` (default sensor model, without its calibration error,
# without the refinement), the grasp quickstart, size_holdout, two more diffusion training seeds,
# the insertion diffusion policy trained with goal noise (fmb train --goal-noise), the diagnosis runs.
# Every stage reuses what an earlier run of this script left in OUT (default runs/perceived), so it
# can be stopped and rerun.
# Usage: scripts/perceived_vs_truth.sh [OUT] [EPISODES] [SEEDS]   (about 2.5 h on 2 idle cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/perceived}"
EPISODES="${2:-50}"
SEEDS="${3:-1 2}"
FMB=.venv/bin/fmb
mkdir -p "$OUT"
stage() { echo "[$(date +%T)] $*"; }

# evaluate RUN NAME [SPLIT] [SIDES] [PLACEMENT] [SKILL]: perceived and truth goals on each side of
# SPLIT (default family_holdout, both sides), into $OUT/SKILL/eval_NAME_SIDE_GOALS.json (SKILL: insert)
evaluate() {
  local run="$1" name="$2" split="${3:-family_holdout}" sides="${4:-train test}" placement="${5:-train}"
  local skill="${6:-insert}"
  for goals in perceived truth; do
    for side in $sides; do
      local json="$OUT/$skill/eval_${name}_${side}_${goals}.json"
      [ -s "$json" ] && continue
      $FMB eval --policy "$run" --episodes "$EPISODES" --split "$split" --side "$side" --placement "$placement" \
        --action-horizon 2 --goals "$goals" --json "$json.part" --quiet > /dev/null
      mv "$json.part" "$json"
    done
  done
}

# train RUN ARGS...: the insertion recipe (tcp_goal, 2500 steps), continued where a checkpoint exists
train() {
  local run="$1"; shift
  $FMB train --data "$OUT/insert/demos" --out "$run" --goal tcp_goal --steps 2500 --checkpoint-every 1250 \
    --quiet "$@" $(compgen -G "$run/checkpoints/step_*" > /dev/null && echo --resume)
}

# Insertion: the quickstart (demonstrations, diffusion seed 0, BC), evaluated both ways.
stage "insertion quickstart"
$FMB quickstart --out "$OUT/insert" --eval-episodes "$EPISODES" --quiet

# The same policies with each camera as calibrated (no hand-eye refinement of sim.perception.hand_eye):
# what the refinement is worth, on the same weights.
stage "hand-eye off"
for policy in diffusion bc; do
  for side in train test; do
    json="$OUT/insert/eval_${policy}_hand_eye_off_${side}_perceived.json"
    [ -s "$json" ] || { $FMB eval --policy "$OUT/insert/$policy" --episodes "$EPISODES" --split family_holdout \
      --side "$side" --action-horizon 2 --goals perceived --hand-eye off --json "$json.part" --quiet > /dev/null \
      && mv "$json.part" "$json"; }
  done
done

# The quickstart's diffusion policy with the board placed outside the demonstrations' box.
stage "novel placement"
evaluate "$OUT/insert/diffusion" novel_placement family_holdout train novel
# ... and on the procedural split's sampled pegs (not FMB's sizes).
evaluate "$OUT/insert/diffusion" procedural procedural test

# Perception on the default sensor model, on it without the calibration error (what is left is
# depth noise and missing returns) and without the hand-eye refinement: insertion scenes (held pegs)
# and vertical-chain scenes (lying pegs).
stage "bench perception"
for task in insert vertical_chain; do
  [ -s "$OUT/perception_$task.json" ] || $FMB bench perception --scenes 20 --task "$task" --json > "$OUT/perception_$task.json"
done
[ -s "$OUT/perception_insert_calibrated.json" ] || $FMB bench perception --scenes 20 --task insert \
  --extrinsic-rotation 0 --extrinsic-translation 0 --json > "$OUT/perception_insert_calibrated.json"
for task in insert vertical_chain; do
  [ -s "$OUT/perception_${task}_hand_eye_off.json" ] || $FMB bench perception --scenes 20 --task "$task" \
    --hand-eye off --json > "$OUT/perception_${task}_hand_eye_off.json"
done

# Grasp: the same recipe with the grasp goal.
stage "grasp quickstart"
$FMB quickstart --out "$OUT/grasp" --task grasp --goal grasp --eval-episodes "$EPISODES" --quiet
evaluate "$OUT/grasp/diffusion" procedural procedural test train grasp

# size_holdout: the same recipe on its train side (sizes S and M), evaluated on both sides (L held out).
stage "size_holdout"
SIZE="$OUT/insert_size_holdout"
$FMB sim collect --task insert --episodes 100 --out "$SIZE/demos" --split size_holdout --side train \
  --cameras side_1,side_2,wrist --image-size 128 --point-cloud 4096 --workers 2 --quiet
$FMB train --data "$SIZE/demos" --out "$SIZE/diffusion" --goal tcp_goal --steps 2500 --checkpoint-every 1250 \
  --quiet $(compgen -G "$SIZE/diffusion/checkpoints/step_*" > /dev/null && echo --resume)
evaluate "$SIZE/diffusion" size_holdout size_holdout "train test"

# More diffusion seeds of the insertion recipe.
stage "seeds"
for seed in $SEEDS; do
  train "$OUT/insert/diffusion_seed$seed" --seed "$seed"
  evaluate "$OUT/insert/diffusion_seed$seed" "seed$seed"
done

# The insertion diffusion policy trained with goal noise near the measured perception error.
stage "goal noise"
train "$OUT/insert/diffusion_goal_noise" --goal-noise 1.0,0.5 --seed 0
evaluate "$OUT/insert/diffusion_goal_noise" goal_noise

# Where the gap comes from (24 episodes, seen side): ground-truth goals with the sensor model on the
# policy's own cloud, and perceived goals from exact depth.
stage "diagnosis"
for case in "truth default" "perceived exact"; do
  set -- $case
  json="$OUT/insert/diag_goals_$1_sensor_$2.json"
  [ -s "$json" ] || { $FMB eval --policy "$OUT/insert/diffusion" --episodes 24 --split family_holdout --side train \
    --action-horizon 2 --goals "$1" --sensor "$2" --json "$json.part" --quiet > /dev/null && mv "$json.part" "$json"; }
done
