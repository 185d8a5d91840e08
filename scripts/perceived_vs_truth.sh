#!/usr/bin/env bash
# Success with perceived goals (what a robot gets) beside ground-truth goals (an upper bound), for
# insertion and grasp. Stages, in the order they run (most wanted first):
#   insert          the insertion quickstart (100 demonstrations, small diffusion seed 0 and BC),
#                   perceived and truth goals on both sides of family_holdout
#   insert_seeds    diffusion training seeds SEEDS of the same recipe, evaluated the same way
#   insert_splits   the seed-0 diffusion policy on novel board placements and the procedural split
#   insert_size     size_holdout: the recipe on its train side (sizes S, M), evaluated on both sides
#   grasp           the grasp quickstart (goal: grasp) and its diffusion policy on the procedural split
#   grasp_seeds     grasp diffusion training seeds SEEDS
#   grasp_size      size_holdout for the grasp recipe
#   perception      `fmb bench perception`: default sensor model, without its calibration error,
#                   without the hand-eye refinement (insertion and vertical-chain scenes)
#   hand_eye_off    the insertion quickstart's policies with each camera as calibrated
#   goal_noise      the insertion diffusion policy trained with goal noise (fmb train --goal-noise)
#   diagnosis       where the gap comes from: truth goals with the sensor model, perceived on exact depth
# Every stage reuses what an earlier run of this script left in OUT (default runs/perceived), so it
# can be stopped and rerun; STAGES (default: all, in the order above) picks some.
# Usage: scripts/perceived_vs_truth.sh [OUT] [EPISODES] [SEEDS] [STAGES]
#   e.g. scripts/perceived_vs_truth.sh runs/perceived 50 "1 2" "insert insert_seeds"
#   Each quickstart takes about 35 min on 2 idle cores, each further training seed about 20 min
#   (training and four evaluations), every stage about 4 h.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/perceived}"
EPISODES="${2:-50}"
SEEDS="${3:-1 2}"
ALL="insert insert_seeds insert_splits insert_size grasp grasp_seeds grasp_size perception hand_eye_off goal_noise diagnosis"
STAGES="${4:-$ALL}"
FMB=.venv/bin/fmb
for s in $STAGES; do
  [[ " $ALL " == *" $s "* ]] || { echo "unknown stage '$s'; stages: $ALL" >&2; exit 2; }
done
mkdir -p "$OUT"
wanted() { [[ " $STAGES " == *" $1 "* ]] && echo "[$(date +%T)] $1"; }

# The goal each skill's policies are conditioned on.
goal_of() { case "$1" in insert) echo tcp_goal ;; grasp) echo grasp ;; esac; }

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
        --action-horizon 2 --goals "$goals" --workers 2 --json "$json.part" --quiet > /dev/null
      mv "$json.part" "$json"
    done
  done
}

# train SKILL DEMOS RUN ARGS...: the quickstart's diffusion recipe (2500 steps, the skill's goal),
# continued where a checkpoint exists
train() {
  local skill="$1" demos="$2" run="$3"; shift 3
  $FMB train --data "$demos" --out "$run" --goal "$(goal_of "$skill")" --steps 2500 --checkpoint-every 1250 \
    --quiet "$@" $(compgen -G "$run/checkpoints/step_*" > /dev/null && echo --resume)
}

# size_holdout SKILL: demonstrations on its train side (sizes S and M), the diffusion recipe,
# evaluated on both sides (L held out)
size_holdout() {
  local skill="$1" dir="$OUT/${1}_size_holdout"
  if [ ! -e "$dir/demos.done" ]; then  # a collection stopped part way starts again
    rm -rf "$dir/demos"
    $FMB sim collect --task "$skill" --episodes 100 --out "$dir/demos" --split size_holdout --side train \
      --cameras side_1,side_2,wrist --image-size 128 --point-cloud 4096 --workers 2 --quiet
    touch "$dir/demos.done"
  fi
  train "$skill" "$dir/demos" "$dir/diffusion"
  evaluate "$dir/diffusion" size_holdout size_holdout "train test" train "$skill"
}

if wanted insert; then
  $FMB quickstart --out "$OUT/insert" --eval-episodes "$EPISODES" --quiet
fi

if wanted insert_seeds; then
  for seed in $SEEDS; do
    train insert "$OUT/insert/demos" "$OUT/insert/diffusion_seed$seed" --seed "$seed"
    evaluate "$OUT/insert/diffusion_seed$seed" "seed$seed"
  done
fi

if wanted insert_splits; then
  # the board outside the demonstrations' box, and the procedural split's sampled pegs (not FMB's sizes)
  evaluate "$OUT/insert/diffusion" novel_placement family_holdout train novel
  evaluate "$OUT/insert/diffusion" procedural procedural test
fi

if wanted insert_size; then
  size_holdout insert
fi

if wanted grasp; then
  $FMB quickstart --out "$OUT/grasp" --task grasp --goal grasp --eval-episodes "$EPISODES" --quiet
  evaluate "$OUT/grasp/diffusion" procedural procedural test train grasp
fi

if wanted grasp_seeds; then
  for seed in $SEEDS; do
    train grasp "$OUT/grasp/demos" "$OUT/grasp/diffusion_seed$seed" --seed "$seed"
    evaluate "$OUT/grasp/diffusion_seed$seed" "seed$seed" family_holdout "train test" train grasp
  done
fi

if wanted grasp_size; then
  size_holdout grasp
fi

if wanted perception; then
  # insertion scenes (held pegs) and vertical-chain scenes (lying pegs)
  for task in insert vertical_chain; do
    [ -s "$OUT/perception_$task.json" ] || $FMB bench perception --scenes 20 --task "$task" --json > "$OUT/perception_$task.json"
  done
  [ -s "$OUT/perception_insert_calibrated.json" ] || $FMB bench perception --scenes 20 --task insert \
    --extrinsic-rotation 0 --extrinsic-translation 0 --json > "$OUT/perception_insert_calibrated.json"
  for task in insert vertical_chain; do
    [ -s "$OUT/perception_${task}_hand_eye_off.json" ] || $FMB bench perception --scenes 20 --task "$task" \
      --hand-eye off --json > "$OUT/perception_${task}_hand_eye_off.json"
  done
fi

if wanted hand_eye_off; then
  # the same weights with each camera as calibrated: what sim.perception.hand_eye's refinement is worth
  for policy in diffusion bc; do
    for side in train test; do
      json="$OUT/insert/eval_${policy}_hand_eye_off_${side}_perceived.json"
      [ -s "$json" ] || { $FMB eval --policy "$OUT/insert/$policy" --episodes "$EPISODES" --split family_holdout \
        --side "$side" --action-horizon 2 --goals perceived --hand-eye off --workers 2 --json "$json.part" --quiet > /dev/null \
        && mv "$json.part" "$json"; }
    done
  done
fi

if wanted goal_noise; then
  train insert "$OUT/insert/demos" "$OUT/insert/diffusion_goal_noise" --goal-noise 1.0,0.5 --seed 0
  evaluate "$OUT/insert/diffusion_goal_noise" goal_noise
fi

if wanted diagnosis; then
  # 24 episodes, seen side: ground-truth goals with the sensor model on the policy's own cloud, and
  # perceived goals from exact depth
  for case in "truth default" "perceived exact"; do
    set -- $case
    json="$OUT/insert/diag_goals_$1_sensor_$2.json"
    [ -s "$json" ] || { $FMB eval --policy "$OUT/insert/diffusion" --episodes 24 --split family_holdout --side train \
      --action-horizon 2 --goals "$1" --sensor "$2" --workers 2 --json "$json.part" --quiet > /dev/null && mv "$json.part" "$json"; }
  done
fi
echo "[$(date +%T)] done: $OUT"
