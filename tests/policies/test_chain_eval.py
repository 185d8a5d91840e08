"""Chains with learned skills: chained demonstrations cut into skills, a policy per stage trained
on them, the chain evaluated end to end in MuJoCo with per-stage results; bad chains refused."""

import json

import numpy as np
import pytest

from fmb.cli import main
from fmb_core.errors import ParameterError
from policies.experiments.evaluate import PolicyRunSpec, evaluate
from policies.train import train
from sim.collect import RunSpec, collect
from sim.stages import split_stages
from sim.store import EpisodeStore
from sim.tasks.skill_goals import SKILL_GOALS
from tests.policies.conftest import tiny, tiny_training

pytestmark = pytest.mark.train

STAGES = ("grasp", "rotate", "insert")


def chain_runs(root, task: str, episodes: int, skills) -> dict:
    """`episodes` expert demonstrations of chain `task` (rectangle pegs) in `root`, cut into
    skills, and a tiny policy per skill of `skills` trained on its stage episodes with its goal."""
    collect(RunSpec(task, families=("rectangle",)), root / "chain", episodes=episodes, progress=False)
    split_stages(root / "chain", root / "stages", progress=False)
    runs = {}
    for skill in skills:
        runs[skill] = root / f"run_{skill}"
        train(
            [root / "stages" / skill],
            runs[skill],
            tiny(goal=SKILL_GOALS[skill], state_keys=("tcp_pose", "gripper", "goal")),
            tiny_training(steps=4),
            progress=False,
            log=lambda m: None,
        )
    return runs


@pytest.fixture(scope="module")
def stage_runs(tmp_path_factory):
    """Two vertical-chain expert demonstrations (rectangle pegs), cut into skills, and a tiny
    policy per skill trained on its stage episodes with the skill's goal."""
    root = tmp_path_factory.mktemp("chain")
    return root, chain_runs(root, "vertical_chain", 2, STAGES)


def test_chained_stage_episodes_start_where_the_previous_stage_left(stage_runs):
    """Each stage episode carries its own goal, fixed at the stage's start; the held peg's start
    (measured in the hand) is recorded and differs from the grasp command, while the single-skill
    insert task starts with the peg exactly as commanded."""
    root, _ = stage_runs
    chain = EpisodeStore.open(root / "chain")
    meta = chain.load_meta(0)
    for skill in STAGES:
        store = EpisodeStore.open(root / "stages" / skill)
        assert store.meta["task"] == skill and len(store) == 2
        m = store.load_meta(0)
        assert m["chain"] == {
            "task": "vertical_chain",
            "stage": STAGES.index(skill),
            "stages": list(STAGES),
            "episode_index": 0,
        }
        assert m["success"] is True and np.shape(m["targets"][SKILL_GOALS[skill]]) == (7,)
        data = store.load(0).data
        assert (data["stage"] == STAGES.index(skill)).all() and len(data["action"]) == m["steps"]
        assert 0.0 <= data["progress"].min() and data["progress"].max() <= 1.0
    # the stages partition the chain episode's steps, but for the insert's transport across the
    # table, left out up to where the hand is within 2 cm of its goal (where the single-skill
    # insert starts and the chain's planned approach hands over)
    metas = {s: EpisodeStore.open(root / "stages" / s).load_meta(0) for s in STAGES}
    transport = metas["insert"]["transport_steps_left_out"]
    assert transport > 5 and sum(m["steps"] for m in metas.values()) + transport == meta["num_steps"]
    first = EpisodeStore.open(root / "stages" / "insert").load(0).data["obs/tcp_pose"][0]
    assert np.linalg.norm(first[:2] - np.asarray(metas["insert"]["targets"]["tcp_goal"])[:2]) <= 0.02
    with pytest.raises(ParameterError, match="cut 20 mm from the hole, not 0 mm"):
        split_stages(root / "chain", root / "stages", progress=False, from_hole=0.0)
    insert = EpisodeStore.open(root / "stages" / "insert").load_meta(0)
    start = insert["stage_start"]
    assert start["offset_mm"] > 0.1  # the fingers moved the peg while closing: not the command
    commanded = np.asarray(insert["peg_in_tcp"])
    assert not np.allclose(commanded, start["peg_in_tcp"], atol=1e-4)
    # rerunning the split adds nothing
    again = split_stages(root / "chain", root / "stages", progress=False)
    assert all(v["new"] == 0 and v["episodes"] == 2 for v in again.values())


def test_chain_of_learned_skills_runs_and_reports_stages(stage_runs, tmp_path):
    """A learned grasp, an expert rotate and a learned insert run the vertical chain end to end;
    the result has per-stage rates among the episodes that reached each stage and where the
    failed ones stopped, consistent with the rows."""
    _, runs = stage_runs
    spec = PolicyRunSpec(
        "",
        task="vertical_chain",
        families=("rectangle",),
        device="cpu",
        goals="truth",
        stages=(("grasp", str(runs["grasp"])), ("rotate", "expert"), ("insert", str(runs["insert"]))),
        max_steps=30,
    )
    result = evaluate(spec, episodes=2, progress=False)
    assert result["task"] == "vertical_chain" and result["policy"]["rotate"] == "expert"
    assert set(result["per_stage"]) == set(STAGES)
    rows = result["episodes"]
    assert result["per_stage"]["grasp"]["episodes"] == 2
    for k, skill in enumerate(STAGES):
        reached = sum(r["stages_done"] >= k for r in rows)
        assert result["per_stage"][skill].get("episodes", 0) == reached
        assert result["failed_at"][skill] == sum(not r["success"] and r["stages_done"] == k for r in rows)
    assert sum(result["failed_at"].values()) == sum(not r["success"] for r in rows)
    assert all(r["stage_reached"] in STAGES for r in rows)


def test_bad_chains_are_refused_naming_the_stage(stage_runs):
    _, runs = stage_runs
    base = dict(task="vertical_chain", device="cpu", goals="truth", families=("rectangle",))
    wrong = PolicyRunSpec(
        "", stages=(("grasp", str(runs["insert"])), ("rotate", "expert"), ("insert", "expert")), **base
    )
    with pytest.raises(ParameterError, match="stage 'grasp'.*trained for insert"):
        wrong.build()
    missing = PolicyRunSpec("", stages=(("grasp", str(runs["grasp"])), ("insert", str(runs["insert"]))), **base)
    with pytest.raises(ParameterError, match="stage 'rotate' of vertical_chain has no policy"):
        evaluate(missing, episodes=1, progress=False)
    stray = PolicyRunSpec(str(runs["grasp"]), stages=(("regrasp", "expert"),), **base)
    with pytest.raises(ParameterError, match="'regrasp' is not a stage of vertical_chain"):
        stray.stage_sources()
    with pytest.raises(ParameterError, match="not one"):
        PolicyRunSpec("", task="insert", stages=(("insert", "expert"),))


def test_fmb_eval_runs_a_chain_from_the_command_line(stage_runs, tmp_path, capsys):
    _, runs = stage_runs
    out = tmp_path / "result.json"
    code = main(
        [
            "eval",
            "--task",
            "vertical_chain",
            "--policy",
            f"grasp={runs['grasp']}",
            "--policy",
            "rotate=expert",
            "--policy",
            "insert=expert",
            "--goals",
            "truth",
            "--families",
            "rectangle",
            "--episodes",
            "1",
            "--max-steps",
            "20",
            "--json",
            str(out),
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert "grasp" in capsys.readouterr().out.splitlines()[-1]
    result = json.loads(out.read_text())
    assert result["policy"]["insert"] == "expert" and "per_stage" in result
    code = main(["eval", "--task", "vertical_chain", "--policy", "grasp=a", "--policy", "grasp=b", "--goals", "truth"])
    assert code != 0 and "stage 'grasp' is given twice" in capsys.readouterr().err


def test_multi_skill_policy_acts_by_its_skill(stage_runs, tmp_path):
    """One policy trained on the three stages' episodes, each skill conditioned on its own goal
    (`--goal skill`): it knows the three skills, its runners take each skill's goal, and at the
    step where the chain hands over from grasp to rotate (one observation) it turns the hand as
    the rotate demonstrations do when told "rotate" and does not when told "grasp"."""
    from policies.common.features import GOAL_POSE
    from policies.runtime.policy import Policy
    from policies.runtime.runner import PolicyRunner

    root, _ = stage_runs
    stores = [root / "stages" / s for s in STAGES]
    run = tmp_path / "multi"
    config = tiny(policy_type="bc", goal="skill", state_keys=("tcp_pose", "gripper", "goal"), bc_hidden=(128, 128))
    train(stores, run, config, tiny_training(steps=600, checkpoint_every=600), progress=False, log=lambda m: None)
    policy = Policy.load(run, "cpu")
    assert set(policy.skills) == set(STAGES)
    assert {PolicyRunner(policy, skill=s).goal_key for s in STAGES} == {"grasp", "tcp_goal"}
    rotate = EpisodeStore.open(root / "stages" / "rotate").load(0)
    demo_turn = np.abs(rotate.data["action"][:2, 5]).mean()  # yaw per step [rad] at the rotate's start
    history = [{k.removeprefix("obs/"): v[t] for k, v in rotate.data.items() if k.startswith("obs/")} for t in range(2)]
    turns = {}
    for skill, goal in (("rotate", rotate.meta["targets"]["tcp_goal"]), ("grasp", history[0]["tcp_pose"])):
        chunk = policy.predict([{**h, GOAL_POSE: np.asarray(goal, float)} for h in history], 1, seed=0, skill=skill)
        turns[skill] = float(np.abs(chunk[0, :2, 5]).mean())
    assert demo_turn > np.radians(4.0)  # the rotate expert turns 8-14 deg per step
    assert turns["rotate"] > 0.5 * demo_turn and turns["grasp"] < 0.5 * turns["rotate"], (turns, demo_turn)
    # the chain runs the multi-skill policy for every stage
    spec = PolicyRunSpec(
        str(run), task="vertical_chain", families=("rectangle",), device="cpu", goals="truth", max_steps=5
    )
    result = evaluate(spec, episodes=1, progress=False)
    assert set(result["policy"]) == set(STAGES) and len(set(result["policy"].values())) == 1


def test_chain_with_perceived_goals(stage_runs):
    """With perceived goals the learned insert stage gets its goal from the cameras at the stage's
    start (the hole and the held peg estimated; the in-hand pose by `--in-hand checked`), every
    action of every stage passes the safety filter, and the report names what each stage perceived."""
    _, runs = stage_runs
    spec = PolicyRunSpec(
        "",
        task="vertical_chain",
        families=("rectangle",),
        device="cpu",
        goals="perceived",
        stages=(("grasp", "expert"), ("rotate", "expert"), ("insert", str(runs["insert"]))),
        max_steps=90,
    )
    result = evaluate(spec, episodes=1, progress=False)
    row = result["episodes"][0]
    assert row["stages_done"] >= 2, row  # the experts grasped and rotated
    insert = row["stage_reports"]["insert"]
    assert insert["goals"] == "perceived" and insert["in_hand_source"] in ("commanded grasp", "estimated in hand")
    assert insert["perception"]["hole"]["translation_mm"] < 1.0
    assert insert["perception"]["in_hand"]["translation_mm"] < 1.5  # the cameras' held peg, tip by free space
    # the chain's grasp left the peg where the command did not put it: the commanded pose is off
    assert insert["perception"]["in_hand_commanded"]["translation_mm"] > 0.1
    assert sum(row["safety"].values()) == row["steps"]  # every step's action went through the filter
    assert result["goals"]["source"] == "perceived"


HORIZONTAL = ("grasp", "place_on_fixture", "regrasp", "insert")


@pytest.fixture(scope="module")
def horizontal_runs(tmp_path_factory):
    """One horizontal-chain expert demonstration (a rectangle peg), cut into skills, and tiny
    place_on_fixture and regrasp policies trained on its stages."""
    root = tmp_path_factory.mktemp("horizontal")
    return root, chain_runs(root, "horizontal_chain", 1, ("place_on_fixture", "regrasp"))


def test_regrasp_stages_start_where_the_chains_retreat_left_the_hand(horizontal_runs):
    """Before regrasp the chain expert backs the open hand out and up to RETREAT (clearing the
    cameras' view of the fixture); the regrasp stage episode starts there, as the single-skill
    regrasp task does, and the retreat's steps are left out."""
    from sim.experts.chain import RETREAT

    root, _ = horizontal_runs
    meta = EpisodeStore.open(root / "chain").load_meta(0)
    assert meta["success"] is True
    metas = {s: EpisodeStore.open(root / "stages" / s).load_meta(0) for s in HORIZONTAL}
    left_out = metas["regrasp"]["planned_steps_left_out"]
    assert left_out >= 5
    assert (
        sum(m["steps"] for m in metas.values()) + left_out + metas["insert"]["transport_steps_left_out"]
        == (meta["num_steps"])
    )
    first = EpisodeStore.open(root / "stages" / "regrasp").load(0).data["obs/tcp_pose"][0]
    assert np.linalg.norm(first[:3] - RETREAT) <= 0.01


def test_horizontal_chain_with_perceived_fixture_goals(horizontal_runs):
    """With perceived goals a learned place_on_fixture gets the pocket from the estimated fixture,
    and a learned regrasp, after the retreat, the grasp of the peg estimated standing in the
    fixture's pocket; both reports name what they perceived, every step passes the filter."""
    _, runs = horizontal_runs
    common = dict(task="horizontal_chain", families=("rectangle",), device="cpu", goals="perceived", stage_attempts=1)
    place = PolicyRunSpec(
        "", stages=(("grasp", "expert"), ("place_on_fixture", str(runs["place_on_fixture"])),
                    ("regrasp", "expert"), ("insert", "expert")), **common,
    )  # fmt: skip
    row = evaluate(place, episodes=1, progress=False)["episodes"][0]
    report = row["stage_reports"]["place_on_fixture"]
    assert report["goals"] == "perceived" and not report["perception_failure"]
    assert report["perception"]["pocket"]["translation_mm"] < 1.0 and report["perception"]["pocket"]["rotation_deg"] < 1
    assert sum(row["safety"].values()) == row["steps"]
    regrasp = PolicyRunSpec(
        "", stages=(("grasp", "expert"), ("place_on_fixture", "expert"), ("regrasp", str(runs["regrasp"])),
                    ("insert", "expert")), **common,
    )  # fmt: skip
    row = evaluate(regrasp, episodes=1, progress=False)["episodes"][0]
    assert row["stages_done"] >= 2 and row["retreat_steps"] >= 5, row  # the experts placed it; then the retreat
    report = row["stage_reports"]["regrasp"]
    assert report["goals"] == "perceived" and not report["perception_failure"]
    assert report["perception"]["peg"]["translation_mm"] < 3.0 and report["perception"]["fixture"]["translation_mm"] < 1


def test_stage_attempts_retry_a_stage_then_fail_there(stage_runs):
    """With --stage-attempts 2 an untrained grasp gets its skill's own step limit twice (the policy
    reset in between), then the episode ends as a failure at grasp, long before the chain's limit."""
    from sim.tasks import step_limit

    _, runs = stage_runs
    spec = PolicyRunSpec(
        "",
        task="vertical_chain",
        families=("rectangle",),
        device="cpu",
        goals="truth",
        stages=(("grasp", str(runs["grasp"])), ("rotate", "expert"), ("insert", "expert")),
        stage_attempts=2,
    )
    result = evaluate(spec, episodes=1, progress=False)
    row = result["episodes"][0]
    assert not row["success"] and row["stage_reached"] == "grasp"
    assert row["attempts"] == {"grasp": 2} and row["steps"] == 2 * step_limit("grasp")
    assert "stage grasp: no success in 2 attempt(s)" in row["aborted"]
    assert result["per_stage"]["grasp"]["retried_episodes"] == 1 and result["runner"]["stage_attempts"] == 2
