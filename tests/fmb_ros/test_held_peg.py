"""`fmb_ros.held_peg` without ROS: when the hand holds something, the hand's state at a cloud's
stamp, which held-peg estimate a skill server still trusts at a goal's start, and the in-hand pose a
`tcp_goal` is built with (`SkillExecution.start`, by `sim.perceived_goals.held_in_hand`), and how
long the task executor holds a held-peg stage's goal for an estimate of that stage (`HeldPegWait`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from fmb_ros.exceptions import GoalError
from fmb_ros.held_peg import (
    HOLDING_BELOW,
    HandHistory,
    HeldPegEstimates,
    HeldPegWait,
    InHandEstimate,
    holding,
    holds_peg,
    in_hand_choice,
)
from sim.panda import GRIPPER_OPEN
from sim.perceived_goals import PerceivedGoalConfig, policy_goal
from sim.spatial import compose, pose

PEG = "peg_rectangle_L_short"
COMMANDED = pose([0.0, 0.0, -0.03])  # the peg's base 3 cm above the TCP, tip down
ACROSS = compose(pose([0.008, 0.0, 0.0]), COMMANDED)  # 8 mm across the TCP axis: the grasp slipped
NEAR = compose(pose([0.0005, 0.0, 0.0]), COMMANDED)  # 0.5 mm across the TCP axis: the cameras' error
ALONG = compose(pose([0.0, 0.0, -0.005]), COMMANDED)  # 5 mm along it: the grasp closed higher up the peg


def test_the_hand_holds_something_below_fully_open_less_one_control_periods_travel():
    assert HOLDING_BELOW == pytest.approx(0.07)
    assert not holding(GRIPPER_OPEN) and not holding(0.0705)
    assert holding(0.0655) and holding(0.0)  # FMB's widest grasp; closed on nothing (nothing will be found)


def test_the_hand_at_a_clouds_stamp_is_the_nearest_measurement_within_the_tolerance():
    hand = HandHistory(span=1.0)
    for k in range(30):  # 10 Hz for 3 s: the last second is kept
        hand.add_tcp(0.1 * k, pose([0.5, 0.0, 0.1 * k]))
        hand.add_gripper(0.1 * k, 0.03)
    tcp, opening = hand.at(2.52, tolerance=0.05)
    assert tcp[2] == pytest.approx(2.5) and opening == 0.03
    assert hand.at(2.55, tolerance=0.03) is None  # no measurement near enough: no estimate
    assert hand.at(0.5, tolerance=0.05) is None  # older than the span: dropped
    hand.add_tcp(3.0, pose([0.5, 0.0, 0.0]))
    assert hand.at(3.0, tolerance=0.05) is None  # the fingers' state of that time is missing


def test_a_skill_server_trusts_the_newest_estimate_after_the_fingers_last_opened_and_not_too_old():
    held = HeldPegEstimates(max_age=10.0)
    none = held.recent(5.0)
    assert none.pose is None and math.isnan(none.age) and none.why == "no held-peg estimate received"
    held.on_fingers(GRIPPER_OPEN, 1.0)  # open
    held.on_fingers(0.03, 2.0)  # closed on the peg
    held.on_estimate(NEAR, 3.0)
    fresh = held.recent(5.0)
    np.testing.assert_allclose(fresh.pose, NEAR)
    assert fresh.age == pytest.approx(2.0) and fresh.why == ""
    stale = held.recent(13.5)
    assert stale.pose is None and stale.why == "the newest estimate is 10.5 s old (held_peg_max_age 10 s)"
    held.on_fingers(GRIPPER_OPEN, 6.0)  # let go: the estimate was of that grasp
    gone = held.recent(7.0)
    assert gone.pose is None and "before the fingers last opened" in gone.why


def test_the_executor_holds_a_held_peg_goal_until_an_estimate_of_its_stage_or_the_limit():
    skills = ("grasp", "place_on_fixture", "regrasp", "rotate", "insert")
    assert [skill for skill in skills if holds_peg(skill)] == ["rotate", "insert"]  # their goal is a tcp_goal
    wait = HeldPegWait(limit=8.0)
    assert wait.check(1.0) == (True, 0.0, "", False)  # not armed: a stage that does not wait
    wait.on_estimate(3.0)  # of the grasp's cloud, before the grasp ended
    wait.arm(10.0)  # the insert stage begins when the grasp ended
    gate = wait.check(10.0)
    assert not gate.go and wait.waiting and "taken after 10.0 s (newest of 3.0 s)" in gate.note
    assert not wait.check(12.9).go  # within the limit
    wait.on_estimate(11.5)  # a cloud taken 1.5 s into the stage, estimated by 13 s
    gate = wait.check(13.0)
    assert gate.go and not gate.timed_out and gate.waited == pytest.approx(3.0)
    assert "1.5 s after the stage began arrived after waiting 3.0 s" in gate.note
    assert not wait.waiting and wait.check(30.0) == (True, 0.0, "", False)  # a retry does not wait again
    wait.arm(40.0)
    assert not wait.check(40.0).go
    gate = wait.check(48.0)  # nothing newer: the goal goes, the skill server takes the command
    assert gate.go and gate.timed_out and "within held_peg_wait 8 s (newest of 11.5 s)" in gate.note
    wait.arm(50.0)
    wait.on_estimate(50.5)  # already there at the first check: no wait, nothing to say
    assert wait.check(51.0) == (True, 0.0, "", False)
    off = HeldPegWait(limit=0.0)
    off.arm(1.0)
    assert off.check(1.0).go and not off.waiting
    fresh = HeldPegWait(limit=1.0)
    fresh.arm(0.0)
    assert "(none received)" in fresh.check(0.0).note and "none received" in fresh.check(1.0).note
    with pytest.raises(ParameterError, match="held_peg_wait"):
        HeldPegWait(limit=-1.0)


def test_in_hand_choice_is_held_in_hands_rule_with_what_a_skill_server_reports():
    info = {"peg": PEG, "peg_in_tcp": COMMANDED.tolist()}
    checked = PerceivedGoalConfig()
    assert checked.in_hand == "checked"
    same = in_hand_choice(checked, info, InHandEstimate(NEAR, 1.5, ""))
    np.testing.assert_allclose(same.pose, COMMANDED)
    assert same.source == "commanded grasp" and same.facts["in_hand_source"] == "commanded grasp"
    assert same.facts["in_hand_offset_mm"] == pytest.approx(0.5) and same.facts["in_hand_estimate"] == "1.50 s old"
    slipped = in_hand_choice(checked, {**info, "peg_in_tcp": ACROSS.tolist()}, InHandEstimate(NEAR, 1.5, ""))
    np.testing.assert_allclose(slipped.pose, NEAR)
    assert slipped.source == "estimated in hand" and slipped.facts["in_hand_offset_mm"] == pytest.approx(7.5)
    higher = in_hand_choice(checked, {**info, "peg_in_tcp": ALONG.tolist()}, InHandEstimate(NEAR, 1.5, ""))
    assert higher.source == "estimated in hand" and higher.facts["in_hand_offset_mm"] == pytest.approx(5.0, abs=0.03)
    unseen = in_hand_choice(checked, info, InHandEstimate(None, 30.0, "too old"))
    assert unseen.source == "commanded grasp" and unseen.facts["in_hand_estimate"] == "too old"
    off = in_hand_choice(checked, info, None)  # no held_peg_topic: the command, nothing else said
    assert off.facts == {"in_hand_source": "commanded grasp"}
    commanded = PerceivedGoalConfig(in_hand="commanded")
    assert in_hand_choice(commanded, {**info, "peg_in_tcp": ACROSS.tolist()}, InHandEstimate(NEAR, 1.0, "")).source == (
        "commanded grasp"
    )
    estimated = PerceivedGoalConfig(in_hand="estimated")
    assert in_hand_choice(estimated, info, InHandEstimate(NEAR, 1.0, "")).source == "estimated in hand"
    with pytest.raises(ParameterError, match=r"held peg was not seen in the hand \(too old\)"):
        in_hand_choice(estimated, info, InHandEstimate(None, 30.0, "too old"))
    assert in_hand_choice(checked, {"peg": PEG}, InHandEstimate(NEAR, 1.0, "")).pose is None  # not holding


class _GoalRunner:
    """A goal-conditioned runner that records its goal (the `sim.contracts.GoalConditioned` surface)."""

    goal_key, needs_subgoals = "tcp_goal", False

    def __init__(self):
        self.goal = None

    def reset(self, env, goal=None, subgoals=None):
        self.goal = goal

    def act(self, env):
        return np.zeros(7)


def test_skill_execution_builds_the_tcp_goal_with_the_chosen_in_hand_pose():
    from fmb_ros.skill import SkillExecution
    from fmb_ros.world import WorldMirror
    from policies.runtime.controllers import Controller
    from sim.safety import SafetyFilter

    hole = np.array([0.5, -0.1, 0.02, 0.0, 0.0, 0.0, 1.0])
    tcp = np.array([0.5, -0.1, 0.2, 1.0, 0.0, 0.0, 0.0])  # pointing down
    world = WorldMirror()
    world.set_tcp(tcp, 0.0)
    world.set_episode(
        {"peg": PEG, "peg_in_tcp": ACROSS.tolist(), "symmetries": [0.0, np.pi], "centroid": [0.0, 0.0, 0.0]}
    )
    runner = _GoalRunner()
    controller = Controller(runner, "fake policy", False, 10, "cpu")

    def run(in_hand: str = "checked") -> SkillExecution:
        return SkillExecution(
            "insert", controller, SafetyFilter(), "panda_link0", in_hand=PerceivedGoalConfig(in_hand=in_hand)
        )

    execution = run()
    execution.start(hole, "panda_link0", world, 0.0, InHandEstimate(NEAR, 1.0, ""))
    np.testing.assert_allclose(runner.goal, policy_goal("tcp_goal", hole, world.episode.info, tcp, NEAR)[0])
    assert execution.goal_facts["in_hand_source"] == "estimated in hand"
    execution = run()
    execution.start(hole, "panda_link0", world, 0.0)  # no estimate: the (slipped) command
    np.testing.assert_allclose(runner.goal, policy_goal("tcp_goal", hole, world.episode.info, tcp)[0])
    assert execution.goal_facts == {"in_hand_source": "commanded grasp"}
    with pytest.raises(GoalError, match="'tcp_goal' cannot be built .*not seen in the hand"):
        run("estimated").start(hole, "panda_link0", world, 0.0, InHandEstimate(None, math.nan, "none received"))
