#!/usr/bin/env bash
# One of FMB's chains with learned skills: chained expert demonstrations on the train side of
# family_holdout, cut into skills (`fmb sim stages`), the quickstart's `small` diffusion recipe and
# its BC baseline trained per skill on its stage episodes with the skill's goal
# (sim.tasks.skill_goals), and the chain evaluated: all stages learned (diffusion; BC), with
# ground-truth goals fixed at each stage's start (an upper bound) and with perceived ones (the
# cameras at each stage's start, every action through the safety filter), on both sides of the
# split; each learned diffusion
# stage alone among experts; one multi-skill diffusion policy (skill one-hot) for every stage; and
# the insertion policy trained on single-skill demonstrations (INSERT_RUN, e.g. the insertion
# quickstart's) in the chain's last stage. Every step reuses what an earlier run left in OUT, so
# it can be stopped and rerun.
# Usage: [CHAIN=vertical_chain|horizontal_chain] [STEPS=2500] [BC_STEPS=2000] scripts/learned_chains.sh [OUT] [DEMOS] [EPISODES] [INSERT_RUN]
# (vertical: about 1.5 h on 2 idle cores)
set -euo pipefail
cd "$(dirname "$0")/.."
CHAIN="${CHAIN:-vertical_chain}"
OUT="${1:-runs/$CHAIN}"
DEMOS="${2:-100}"
EPISODES="${3:-50}"
INSERT_RUN="${4:-}"
STEPS="${STEPS:-2500}"   # diffusion training steps per skill (the quickstart recipe's)
BC_STEPS="${BC_STEPS:-2000}"   # BC baseline training steps per skill (the quickstart's); 0 = no BC
FMB=.venv/bin/fmb
case $CHAIN in
  vertical_chain) SKILLS="grasp rotate insert"; GOALS="truth perceived" ;;
  horizontal_chain) SKILLS="grasp place_on_fixture regrasp insert"; GOALS="truth perceived" ;;
  *) echo "CHAIN=$CHAIN: expected vertical_chain or horizontal_chain" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
stage() { echo "[$(date +%T)] $*"; }

stage "chained demonstrations ($CHAIN)"
$FMB sim collect --task "$CHAIN" --episodes "$DEMOS" --out "$OUT/demos" --split family_holdout --side train \
  --cameras side_1,side_2,wrist --image-size 128 --point-cloud 4096 --workers 2 --quiet > /dev/null
$FMB sim stages "$OUT/demos" --out "$OUT/stages" --quiet > "$OUT/stages.json"

# train KIND STEPS: a KIND (diffusion, bc) policy per skill into $OUT/KIND_<skill>
train() {
  local kind="$1" steps="$2"
  for skill in $SKILLS; do
    case $skill in grasp|regrasp) goal=grasp ;; place_on_fixture) goal=pocket ;; *) goal=tcp_goal ;; esac
    local run="$OUT/${kind}_$skill"
    $FMB train --data "$OUT/stages/$skill" --out "$run" --policy-type "$kind" --goal "$goal" --steps "$steps" \
      --checkpoint-every $((steps / 2)) --quiet $(compgen -G "$run/checkpoints/step_*" > /dev/null && echo --resume) > /dev/null
  done
}
stage "training diffusion"
train diffusion "$STEPS"

# chain NAME SIDE GOALS POLICY...: the chain over EPISODES episodes into $OUT/eval_NAME_SIDE_GOALS.json
chain() {
  local name="$1" side="$2" goals="$3"; shift 3
  local json="$OUT/eval_${name}_${side}_${goals}.json"
  [ -s "$json" ] && return
  stage "chain $name ($side, $goals goals)"
  $FMB eval --task "$CHAIN" "$@" --episodes "$EPISODES" --split family_holdout --side "$side" \
    --action-horizon 2 --goals "$goals" --workers 2 --json "$json.part" --quiet > /dev/null
  mv "$json.part" "$json"
}
# policies SKILL [KIND]: only SKILL learned (KIND, default diffusion), the other stages the
# scripted expert's (ALL: every stage learned)
policies() {
  for s in $SKILLS; do
    if [ "$1" = ALL ] || [ "$1" = "$s" ]; then echo "--policy $s=$OUT/${2:-diffusion}_$s"; else echo "--policy $s=expert"; fi
  done
}
for side in train test; do
  for goals in $GOALS; do
    chain learned "$side" "$goals" $(policies ALL)
  done
done
for skill in $SKILLS; do
  chain "${skill}_only" train truth $(policies "$skill")
done
if [ "$BC_STEPS" -gt 0 ]; then
  stage "training BC"
  train bc "$BC_STEPS"
  for side in train test; do
    for goals in $GOALS; do
      chain learned_bc "$side" "$goals" $(policies ALL bc)
    done
  done
fi
# One diffusion policy for every skill (a skill one-hot; each skill its own goal: --goal skill),
# trained on all the stage stores, against the per-skill policies.
stage "training the multi-skill policy"
MULTI="$OUT/diffusion_multi"
$FMB train --data $(for s in $SKILLS; do echo "$OUT/stages/$s"; done) --out "$MULTI" --goal skill --steps "$STEPS" \
  --checkpoint-every $((STEPS / 2)) --quiet $(compgen -G "$MULTI/checkpoints/step_*" > /dev/null && echo --resume) > /dev/null
for side in train test; do
  chain learned_multi "$side" truth --policy "$MULTI"
done
if [ -n "$INSERT_RUN" ]; then
  chain insert_single_skill_demos train truth $(policies none | sed "s|insert=expert|insert=$INSERT_RUN|")
fi
stage "done"
