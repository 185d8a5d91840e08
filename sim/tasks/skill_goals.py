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

(`held_tcp_goal` is the rule of both held-peg goals, for the simulator's and perception's.)

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


INSERT_DEPTH = 0.025
"""Depth of the inserted peg in a held-peg `tcp_goal` [m]: the insert task's success depth + 5 mm,
as its (and rotate's) `peg_goal` target."""


def held_tcp_goal(info: dict, spec, hole, tcp, peg_in_tcp) -> np.ndarray:
    """(7,) `tcp_goal` of a held-peg skill: the TCP pose at which the peg `spec`, held with
    `peg_in_tcp` (7,) (peg frame in the TCP frame) by a TCP now at `tcp` (7,), is inserted
    INSERT_DEPTH into the hole at `hole` (7,), at the fitting turn (`info["symmetries"]` about
    `info["centroid"]`) nearest the peg's orientation now; with `info["turn_in_place"]` (rotate)
    the TCP stays where it is and only turns so. The one rule of the simulator's goal (the true
    hole, the in-hand pose measured) and of a perceived one (`sim.perceived_goals.policy_goal`:
    the estimated hole, the commanded in-hand pose)."""
    from sim.tasks.geometry import inserted_peg_pose, nearest_fitting_goal

    hole, tcp, peg_in_tcp = (np.asarray(a, float) for a in (hole, tcp, peg_in_tcp))
    inserted = inserted_peg_pose(hole, spec, INSERT_DEPTH)
    peg_goal = nearest_fitting_goal(info, inserted, hole, compose(tcp, peg_in_tcp))
    goal = compose(peg_goal, inverse(peg_in_tcp))
    if info.get("turn_in_place"):
        goal[:3] = tcp[:3]
    return goal


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
        from sim.objects import peg_spec

        hole = info["targets"]["hole"]
        out["targets"]["tcp_goal"] = held_tcp_goal(info, peg_spec(info["peg"]), hole, tcp, compose(inverse(tcp), peg))
        out["targets"]["tcp_goal"] = out["targets"]["tcp_goal"].tolist()
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
