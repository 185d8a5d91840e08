"""Each skill's goal: the one task target its policy conditions on, and the targets a stage of a
chain gets at the moment it starts (from the state the previous stage left, not the single-skill
task's idealised start).

    SKILL_GOALS["insert"]                             # "tcp_goal"
    stage_targets("insert", info, world)              # {"tcp_goal": ...}, facts of the held peg

The goals, all (7,) poses [m, xyzw] in the base frame:

    grasp             "grasp"     the TCP pose of the planned grasp of the resting peg
    place_on_fixture  "pocket"    the fixture pocket's frame
    regrasp           "grasp"     the TCP pose of the standing grasp of the peg in the fixture
    rotate            "tcp_goal"  the TCP where it is, turned so the held peg fits its hole
    insert            "tcp_goal"  the TCP with the held peg inserted in its hole

A single-skill task fixes its goal when the episode starts; a chain (`sim.tasks.chain`) calls
`stage_targets` when a stage begins, with the simulator's poses: these are the ground-truth
goals (an upper bound), as the single-skill tasks' are. Held-peg stages also record
`stage_start` facts (the peg in the hand as measured, its tilt and offset from the commanded
grasp), which is where a chained start differs from a single-skill one.
"""

from __future__ import annotations

import numpy as np

from sim.spatial import axis_angle_between, compose, inverse

SKILL_GOALS = {
    "grasp": "grasp",
    "place_on_fixture": "pocket",
    "regrasp": "grasp",
    "rotate": "tcp_goal",
    "insert": "tcp_goal",
}
"""Skill -> the task target its policy conditions on (`policies.config.PolicyConfig.goal`)."""


def held_tcp_goal(info: dict, tcp: np.ndarray, peg: np.ndarray, turn_in_place: bool) -> np.ndarray:
    """(7,) TCP pose with the peg held at `peg` (TCP at `tcp`) moved to its goal: inserted in the
    hole at the fitting turn nearest its orientation (insert), or only turned so, the TCP staying
    where it is (rotate, `turn_in_place`). `info` holds the stage's hole, peg goal and symmetries."""
    from sim.tasks.insert import nearest_fitting_goal

    targets = info["targets"]
    hole = np.asarray(targets["hole"], float)
    goal = nearest_fitting_goal(info, np.asarray(targets["peg_goal"], float), hole, peg)
    tcp_goal = compose(goal, inverse(compose(inverse(tcp), peg)))
    if turn_in_place:
        tcp_goal[:3] = tcp[:3]
    return tcp_goal


def grasp_target(peg: np.ndarray, grasp_in_peg) -> np.ndarray:
    """(7,) TCP pose grasping the peg at `peg` with `grasp_in_peg` (TCP in the peg frame), turned
    180 deg about the TCP axis where that keeps the hand facing forward (the tasks' rule)."""
    from sim.spatial import pose
    from sim.tasks.geometry import comfortable_grasp

    return comfortable_grasp(compose(peg, np.asarray(grasp_in_peg, float)), pose([0.0, 0.0, 0.0]))


def held_facts(tcp: np.ndarray, peg: np.ndarray, commanded) -> dict:
    """How a peg sits in the hand at a stage's start: its measured pose in the TCP frame and, given
    the `commanded` one (7,) (None: unknown), the tilt between them [deg] and the offset [mm]."""
    measured = compose(inverse(tcp), peg)
    facts = {"peg_in_tcp": measured.round(6).tolist()}
    if commanded is not None:
        commanded = np.asarray(commanded, float)
        facts["tilt_deg"] = round(float(np.degrees(axis_angle_between(measured[3:], commanded[3:]))), 3)
        facts["offset_mm"] = round(float(np.linalg.norm(measured[:3] - commanded[:3])) * 1e3, 3)
    return facts


def stage_targets(skill: str, info: dict, world, commanded_in_hand=None) -> dict:
    """What stage `skill` of a chain adds to its facts `info` when it starts, from `world`
    (`sim.tasks.base.WorldView`, the simulator's poses): {"targets": {...}, ...}.

    Args:
        commanded_in_hand: (7,) peg pose in the TCP frame the last grasp was commanded with (a
            robot knows it from its own command; `sim.perceived_goals.in_hand_pose` reads it as
            "peg_in_tcp"), None when no grasp came before.
    """
    peg, tcp = world.object_pose("peg"), world.tcp_pose()
    out: dict = {"targets": {}}
    if skill == "regrasp":
        out["targets"]["grasp"] = grasp_target(peg, info["targets"]["grasp_in_peg"]).tolist()
        out["targets"]["peg_start"] = peg.tolist()
    if skill in ("rotate", "insert"):
        out["targets"]["tcp_goal"] = held_tcp_goal(info, tcp, peg, turn_in_place=skill == "rotate").tolist()
    if skill in ("rotate", "insert", "place_on_fixture"):
        out["stage_start"] = held_facts(tcp, peg, commanded_in_hand)
        if commanded_in_hand is not None:
            out["peg_in_tcp"] = np.asarray(commanded_in_hand, float).tolist()
    return out


def commanded_in_hand(info: dict) -> np.ndarray | None:
    """(7,) peg pose in the TCP frame that a grasp stage's facts `info` commanded (the inverse of
    the grasp in the peg frame at the peg's pose when the stage started), None for other stages."""
    targets = info.get("targets", {})
    if "grasp" not in targets or "peg_start" not in targets:
        return None
    grasp_in_peg = compose(inverse(np.asarray(targets["peg_start"], float)), np.asarray(targets["grasp"], float))
    return inverse(grasp_in_peg)
