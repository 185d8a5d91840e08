"""A skill's goal from perception, as a robot builds it: no simulator ground truth, no ROS.

    config = PerceivedGoalConfig()                       # side cameras, cloud size, PerceptionConfig
    estimator = goal_estimator(info["peg"], config)      # once per peg part (the models are built once)
    goals = perceive_goals(env, estimator, config, rng)  # render the cloud, estimate, build the goals
    goals.failure or goals.targets["tcp_goal"]           # (7,) [m, xyzw], base frame

The cloud is what the robot's cameras see at the skill's start, each camera's calibration first
refined on the robot's own hand (`sim.perception.hand_eye`, `PerceivedGoalConfig.hand_eye`); the
scene estimate sees it without the hand's and fingers' points (`sim.perception.without_hand`, a
robot's self-filter). A peg standing in the fixture's pocket is found in what of the fixture's
cluster the fixture does not explain (`PerceptionConfig.explain_margin`).
The goals are those of the tasks' `info["targets"]` that a policy conditions on
(`policies.config.PolicyConfig.goal`), from the estimate instead of the simulator:

- `hole`: the estimated board's target hole (`SceneEstimate.target_hole`);
- `tcp_goal`: the hand's pose with the held peg in that hole = the inserted peg pose (at the
  insert task's goal depth, at the fitting turn nearest the held peg's) composed with the in-hand
  pose of the peg (rotate: the hand where it is, turned so; `sim.tasks.skill_goals.held_tcp_goal`,
  the rule of the simulator's goals too), with the in-hand pose from `PerceivedGoalConfig.in_hand`:
  - "commanded": the pose the grasp was commanded with when the task records it
    (`info["peg_in_tcp"]`, "commanded grasp"), else the nominal tip-down grasp `grasp_offset`
    below the base on the TCP axis ("nominal grasp") (`in_hand_pose`). A robot has it from its
    own grasp command; it misses how the peg slid while the fingers closed.
  - "estimated": the held peg registered on the cameras' cloud with the hand's and fingers'
    points removed (`PoseEstimator.in_hand`, "estimated in hand"); the peg not found there is a
    failure.
  - "checked" (default): the command, unless the cameras see the peg held elsewhere: its
    section's centroid farther than `in_hand_offset` or turned more than `in_hand_angle` from
    the command's (`in_hand_disagreement`), when the estimate is taken ("estimated in hand"). A
    learned grasp in a chain holds the peg 5-20 mm and up to 15 deg (60 deg about a
    three-prong's axis) from the plan it was commanded with; the cameras see it to half a
    millimetre and a fraction of a degree (along the axis too: the tip is placed by the free
    space the depth images see past it, `sim.perception.in_hand`). Unseen, the command stands.
  Either way the estimate is made and its error reported when the simulator is asked
  (`perception_errors`: "in_hand" the estimate's, "in_hand_commanded" the command's);
- `pocket`: the estimated fixture's pocket frame (`SceneEstimate.frames["fixture/pocket"]`; the
  estimator built with `goal_estimator(..., fixture=True)`);
- `grasp`: the estimated peg pose composed with the task's planned grasp in the peg frame
  (`targets["grasp_in_peg"]`, a plan fact of the part, not a measured pose), with the gripper's
  and the prism's symmetries resolved as the planner would (`planned_grasp`): a lying peg
  registered end for end still gets a hand from above, facing forward, as in training.

`policy_goal` is the one rule from a perceived target (hole or peg pose) to a goal; the ROS skill
server applies it to its goal message (`fmb_ros.skill.SkillExecution.start`), `goals_from_estimate`
to a scene estimate (an estimate in, goals out). A goal whose object was not found (or was found
below the estimator's `min_fitness`) is a failure with a reason, never a ground-truth fallback.
`perception_errors` compares an estimate with the simulator's poses (for evaluation only).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import NamedTuple

import numpy as np

from fmb_core.errors import ParameterError, check_choice, check_range
from sim.perception import (
    PerceptionConfig,
    PoseEstimator,
    SceneEstimate,
    matrix_to_pose,
    pose_error,
    pose_to_matrix,
    scene_models,
    without_hand,
)
from sim.perception.hand_eye import CameraRefinement, HandEyeConfig, refine_views, table_centre
from sim.spatial import compose, inverse, pose
from sim.tasks.skill_goals import held_tcp_goal

GOAL_SOURCES = ("truth", "perceived")
"""Where an evaluated skill's goal comes from: the simulator's task targets or perception."""
DEFAULT_GOAL_SOURCE = "perceived"
"""The default of `fmb eval --goals` (and prefs collect, bench ablation, the quickstart): what a
robot gets. "truth" (the simulator's targets) is the upper bound reported beside it."""
TRUTH_LABEL = "truth (upper bound)"
"""How results name ground-truth goals: a policy given exact goals is an upper bound."""
IN_HAND_SOURCES = ("checked", "commanded", "estimated")
"""Where a `tcp_goal`'s in-hand pose comes from (`PerceivedGoalConfig.in_hand`; module docstring)."""
GOAL_OBJECTS = {"hole": "board", "tcp_goal": "board", "grasp": "peg", "pocket": "fixture"}
"""Goal key -> the estimated object it is built from."""
FIXTURE_OBJECT = "fixture"
"""The scene object that is the reorientation fixture (`goal_estimator(..., fixture=True)`)."""


@dataclasses.dataclass(frozen=True)
class PerceivedGoalConfig:
    """How a perceived goal is made.

    Attributes:
        cameras: the cameras whose fused cloud perception sees (the robot's side cameras); they are
            rendered at the skill's start whatever the policy's own observation holds.
        image_size: width = height of those renders [px].
        points: points of the fused cloud.
        perception: the estimator's settings (`min_fitness` is the threshold below which an
            object counts as not found).
        in_hand: where a `tcp_goal`'s in-hand pose comes from, one of IN_HAND_SOURCES.
        in_hand_offset: "checked": the cameras' estimate replaces the command when they see the
            peg's section centroid farther than this from the command's [m].
        in_hand_angle: ... or turned more than this from it [deg] (modulo the peg's symmetries).
        hand_eye: how each camera's calibration is refined on the robot's hand before the cloud
            is fused (`sim.perception.hand_eye`; `HandEyeConfig(enabled=False)`: as calibrated).
    """

    cameras: tuple[str, ...] = ("side_1", "side_2")
    image_size: int = 256
    points: int = 40_000
    perception: PerceptionConfig = PerceptionConfig()
    in_hand: str = "checked"
    in_hand_offset: float = 0.002
    in_hand_angle: float = 2.0
    hand_eye: HandEyeConfig = HandEyeConfig()

    def __post_init__(self):
        from sim.scene import DEFAULT_CAMERAS

        known = tuple(c.name for c in DEFAULT_CAMERAS)
        if not self.cameras:
            raise ParameterError(f"cameras must name at least one of {', '.join(known)}")
        for cam in self.cameras:
            check_choice("cameras", cam, known)
        check_range("image_size", self.image_size, 32, 1024, unit="px")
        check_range("points", self.points, 1000, 1_000_000)
        check_choice("in_hand", self.in_hand, IN_HAND_SOURCES)
        check_range("in_hand_offset", self.in_hand_offset, 0.0, 0.05, unit="m")
        check_range("in_hand_angle", self.in_hand_angle, 0.0, 90.0, unit="deg")


class PerceivedGoals(NamedTuple):
    """Goals built from one estimate.

    Attributes:
        targets: goal key -> (7,) pose [m, xyzw] in the base frame (only those it could build).
        in_hand_source: where a `tcp_goal`'s in-hand pose came from ("" without one).
        estimate: the scene estimate they came from.
        failure: "" or why a goal could not be built (the object missing, its fitness too low).
        held: the in-hand estimate of a held peg (`sim.perception.HeldEstimate`, pose in the TCP
            frame) when one was made, else None.
        poses: the perceived object poses the goals were built from, key -> (7,) [m, xyzw], base
            frame: "board" and, for `tcp_goal`, "peg" where the hand holds it (the TCP pose
            composed with the in-hand pose) and "peg_goal" (the inserted peg at the hole, the
            fitting turn nearest it); for `grasp`, "peg" as estimated. GravMap's sub-goals come
            from these (`policies.gravmap.subgoals.perceived_subgoals`).
        cameras: each camera's hand-eye refinement (`sim.perception.hand_eye.CameraRefinement`),
            empty when it is off.
    """

    targets: dict[str, np.ndarray]
    in_hand_source: str
    estimate: SceneEstimate
    failure: str
    held: object = None
    poses: dict | None = None
    cameras: tuple[CameraRefinement, ...] = ()


def goal_estimator(
    peg: str, config: PerceivedGoalConfig = PerceivedGoalConfig(), fixture: bool = False
) -> PoseEstimator:
    """The estimator for the FMB peg part named `peg`, its board and target hole, and with
    `fixture` the reorientation fixture (as an operator names what is on the table; poses are
    never given)."""
    return PoseEstimator(scene_models(peg, seed=config.perception.seed, fixture=fixture), config.perception)


def scene_views(env, config: PerceivedGoalConfig, rng: np.random.Generator) -> tuple[list, list]:
    """([(CameraSpec, pose (7,), rgb, depth)], [CameraRefinement]) of `config.cameras` rendered now
    from `env`'s simulator through its sensor model (`FmbEnv.camera_views`: noisy depth, missing
    returns, the cameras' believed poses), each camera's pose refined on the hand
    (`config.hand_eye`, `sim.perception.hand_eye`). Draws the depth noise from `rng`."""
    views = env.camera_views(config.cameras, config.image_size, rng)
    state = env.backend.robot_state()
    views, cameras = refine_views(
        views, state.tcp_pose, state.gripper_width, config.hand_eye, table_centre(env.config.workspace)
    )
    return views, cameras


def fused_cloud(env, config: PerceivedGoalConfig, views, rng: np.random.Generator) -> np.ndarray:
    """(config.points, 6) cloud [m, rgb 0-1] fused from `views` (`scene_views`) in the base frame,
    cropped to the env's workspace as `sim.env` crops its own; downsampled with `rng`."""
    from sim.pointcloud import fuse_point_cloud

    ws = env.config.workspace
    return fuse_point_cloud(views, config.points, ws.low, ws.high, rng)


def scene_cloud(env, config: PerceivedGoalConfig, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """((points, 6) fused cloud [m, rgb 0-1], [CameraRefinement]): `fused_cloud` of `scene_views`."""
    views, cameras = scene_views(env, config, rng)
    return fused_cloud(env, config, views, rng), cameras


def calibration_errors(env, cameras) -> list[dict]:
    """Per refined camera (`PerceivedGoals.cameras`), how far its believed and its used pose put
    the workspace's table centre from where its true pose does [mm], with the refinement's
    facts (`CameraRefinement.row`). Evaluation only: reads the simulator's camera poses."""
    specs = {c.name: c for c in env.config.camera_specs()}
    p = np.r_[table_centre(env.config.workspace), 1.0]
    out = []
    for fit in cameras:
        T_true_inv = np.linalg.inv(pose_to_matrix(env.backend.camera_pose(specs[fit.camera])))
        before, after = ((pose_to_matrix(q) @ T_true_inv @ p)[:3] - p[:3] for q in (fit.believed, fit.pose))
        out.append(
            {
                **fit.row(),
                "error_before_mm": round(float(np.linalg.norm(before)) * 1e3, 3),
                "error_after_mm": round(float(np.linalg.norm(after)) * 1e3, 3),
            }
        )
    return out


def in_hand_pose(info: dict) -> tuple[np.ndarray | None, str]:
    """(peg pose in the TCP frame (7,) [m, xyzw] or None, its source) for a held peg: the pose
    the grasp was commanded with (`info["peg_in_tcp"]`), else the nominal tip-down grasp
    `info["grasp_offset"]` [m] below the base on the TCP axis; (None, "") when the peg is not held."""
    if "peg_in_tcp" in info:
        return np.asarray(info["peg_in_tcp"], float), "commanded grasp"
    if "grasp_offset" in info:
        return pose([0.0, 0.0, -float(info["grasp_offset"])]), "nominal grasp"
    return None, ""


def in_hand_disagreement(commanded, estimated, spec) -> tuple[float, float]:
    """(offset [m], angle [rad]) between two in-hand poses (7,) (peg in the TCP frame) of peg
    `spec` (`sim.objects.PegSpec`): how far apart its section centroid at half length is, and the
    rotation between them modulo the peg's symmetric turns about its axis."""
    turns, (cx, cy) = visual_turns(spec, LOOK_ALIKE)
    centre = np.array([cx, cy, 0.5 * spec.length_m, 1.0])
    a, b = pose_to_matrix(commanded), pose_to_matrix(estimated)
    offset = (a @ centre)[:3] - (b @ centre)[:3]
    _, angle = pose_error(estimated, commanded, turns, centre[:3])
    return float(np.linalg.norm(offset)), angle


def held_in_hand(
    config: PerceivedGoalConfig, commanded, estimated, spec, commanded_source: str = "commanded grasp"
) -> tuple[np.ndarray, str]:
    """(the in-hand pose (7,) a `tcp_goal` is built with, its source) by `config.in_hand` (module
    docstring), from the `commanded` one (`in_hand_pose`, named `commanded_source`) and the
    cameras' `estimated` one (None: not seen) of the held peg `spec`. The rule `fmb eval` and the
    ROS skill server share."""
    commanded = np.asarray(commanded, float)
    if estimated is None or config.in_hand == "commanded":
        return commanded, commanded_source
    offset, angle = in_hand_disagreement(commanded, estimated, spec)
    elsewhere = offset > config.in_hand_offset or angle > np.radians(config.in_hand_angle)
    if config.in_hand == "estimated" or elsewhere:
        return nearest_turn(estimated, commanded, spec), "estimated in hand"
    return commanded, commanded_source


def nearest_turn(estimated, commanded, spec) -> np.ndarray:
    """(7,) The in-hand pose `estimated` turned about the peg's axis by the one of its visual turns
    (`visual_turns` within LOOK_ALIKE: what the cameras confuse, e.g. a three-prong's 120 deg,
    which its hole still tells apart) that brings it nearest the `commanded` one's rotation: the
    cameras say where the peg sits, the grasp command which way round."""
    from scipy.spatial.transform import Rotation

    turns, (cx, cy) = visual_turns(spec, LOOK_ALIKE)
    E, R_cmd = pose_to_matrix(estimated), Rotation.from_quat(np.asarray(commanded, float)[3:])
    C = np.eye(4)
    C[:2, 3] = cx, cy
    best, best_angle = E, np.inf
    for turn in turns:
        turned = np.eye(4)
        turned[:3, :3] = Rotation.from_euler("z", turn).as_matrix()
        candidate = E @ C @ turned @ np.linalg.inv(C)
        angle = (Rotation.from_matrix(candidate[:3, :3]) * R_cmd.inv()).magnitude()
        if angle < best_angle - 1e-9:
            best, best_angle = candidate, angle
    return matrix_to_pose(best)


def _found(estimate: SceneEstimate, key: str, min_fitness: float) -> str:
    """The empty string when object `key` was found, else the reason."""
    found = estimate.objects.get(key)
    if found is None:
        return f"{key}: not among the estimated objects ({', '.join(estimate.objects) or 'none'})"
    if found.pose is None:
        if found.points == 0:
            return f"{key}: not found (no cluster of its size among {estimate.clusters})"
        return f"{key}: fitness {found.fitness:.3f} below min_fitness {min_fitness:g}"
    return ""


POCKET = f"{FIXTURE_OBJECT}/pocket"
"""`SceneEstimate.frames` key of the fixture's pocket frame (the "pocket" goal)."""


HAND_DOWN = float(np.cos(np.radians(15.0)))
"""A grasp whose TCP axis is within 15 deg of pointing straight down (cosine with the base's -z)
is one the planner could have made (its grasps come from above, TCP axis vertical); perception's
rotation error is a degree or less. `planned_grasp` keeps the first such candidate."""


def _peg_spec(info: dict, key: str):
    from sim.objects import peg_spec

    spec = peg_spec(info.get("peg", ""))
    if spec is None:
        raise ParameterError(f"goal {key!r}: the task facts name no known peg part (peg: {info.get('peg')!r})")
    return spec


def visual_turns(spec, tolerance: float = 0.0005) -> tuple[tuple[float, ...], tuple[float, float]]:
    """(turns [rad] about the section's centroid under which peg `spec` looks the same to within
    `tolerance` [m], that centroid (2,) [m] in the peg frame): what registration cannot tell
    apart about its axis."""
    from sim.tasks.geometry import symmetry_angles

    c = spec.section().centroid
    return symmetry_angles(spec, tolerance), (float(c.x), float(c.y))


LOOK_ALIKE = 0.002
"""[m] Turns of a held peg under which its section moves by at most this are what the cameras
confuse in the hand (a three-prong M or L turned 120 deg: 3-fold to 2 mm, not to 0.5 mm; it was
registered one turn off in 2 of its 3 rotate stages of a chain run with the cameras' pose), so
the in-hand rule leaves them to the command."""


def planned_grasp(peg_pose, grasp_in_peg, length: float, turns=(0.0,), centroid=(0.0, 0.0)) -> np.ndarray:
    """(7,) TCP pose of the task's planned grasp (`grasp_in_peg`, TCP in the peg frame) of a peg
    perceived at `peg_pose`, resolving what perception cannot tell apart:

    - a parallel gripper is symmetric: the grasp turned 180 deg about the TCP axis where that keeps
      the hand facing forward (`sim.tasks.geometry.comfortable_grasp`, the task's own rule);
    - a prism's ends (`sim.perception.end_flips`, a peg of `length` [m]): a lying peg registered end
      for end about a horizontal axis puts the grasp under the table, hand up. Its end flip is the
      true pose. Swapped about the vertical axis, both point down and the estimate's stands: the
      grasp lands mirrored along the peg, still on it;
    - a prism's turns about its axis (`turns` [rad] about the section's `centroid` (2,) [m], peg
      frame: a star looks the same every 72 deg): a lying star registered one turn off would be
      grasped 72 deg from the vertical.

    The planner grasps from above, so the first of these whose grasp points down (HAND_DOWN) is
    taken, the most-down within each: the estimate's own; its end flips; its turns, with and
    without an end flip (the most-down of all when none does).
    """
    from scipy.spatial.transform import Rotation

    from sim.perception import end_flips, matrix_to_pose, pose_to_matrix
    from sim.tasks.geometry import comfortable_grasp

    T = pose_to_matrix(peg_pose)
    C = np.eye(4)
    C[:2, 3] = centroid
    turned = []
    for turn in turns:
        R = np.eye(4)
        R[:3, :3] = Rotation.from_euler("z", turn).as_matrix()
        turned.append(C @ R @ np.linalg.inv(C))

    def best(frames) -> tuple[float, np.ndarray]:
        grasps = [comfortable_grasp(compose(matrix_to_pose(F), grasp_in_peg), pose([0.0, 0.0, 0.0])) for F in frames]
        down = [-Rotation.from_quat(g[3:]).apply([0.0, 0.0, 1.0])[2] for g in grasps]
        k = int(np.argmax(down))
        return down[k], grasps[k]

    flips = end_flips(length)
    for frames in ([T], [T @ F for F in flips], [T @ F @ S for F in [np.eye(4), *flips] for S in turned]):
        down, grasp = best(frames)
        if down >= HAND_DOWN:
            return grasp
    return grasp


def policy_goal(key: str, target, info: dict, tcp_pose, peg_in_tcp=None) -> tuple[np.ndarray, str]:
    """(the goal `key` (7,) [m, xyzw], in-hand source) a policy conditions on, from the skill's
    perceived `target`: the target hole's pose for "hole" and "tcp_goal", the peg's for "grasp",
    the fixture's pocket frame for "pocket".
    The one rule `fmb eval --goals perceived` and the ROS skill server (a goal message or the
    target topic) both use; see module docstring. ParameterError when the task facts in `info` or
    the held peg's in-hand pose (`peg_in_tcp`, default `in_hand_pose(info)`) are missing.

    Args:
        key: one of GOAL_OBJECTS.
        target: (7,) perceived pose [m, xyzw], base frame.
        info: the episode's task facts (see `goals_from_estimate`).
        tcp_pose: (7,) measured TCP pose [m, xyzw].
    """
    check_choice("goal", key, tuple(GOAL_OBJECTS))
    target = np.asarray(target, float)
    if key in ("hole", "pocket"):
        return target, ""
    if key == "grasp":
        grasp_in_peg = info.get("targets", {}).get("grasp_in_peg")
        if grasp_in_peg is None:
            raise ParameterError("goal 'grasp': the task has no grasp plan (targets.grasp_in_peg)")
        spec = _peg_spec(info, key)
        turns, centroid = visual_turns(spec)
        return planned_grasp(target, np.asarray(grasp_in_peg, float), spec.length_m, turns, centroid), ""
    source = ""
    if peg_in_tcp is None:
        peg_in_tcp, source = in_hand_pose(info)
    if peg_in_tcp is None:
        raise ParameterError("goal 'tcp_goal': needs a held peg's in-hand pose (peg_in_tcp or grasp_offset)")
    return held_tcp_goal(info, _peg_spec(info, key), target, tcp_pose, peg_in_tcp), source


def goals_from_estimate(
    estimate: SceneEstimate,
    info: dict,
    tcp_pose,
    keys: tuple[str, ...] = tuple(GOAL_OBJECTS),
    min_fitness: float = 0.0,
    peg_in_tcp=None,
    in_hand_source: str = "",
) -> PerceivedGoals:
    """The goals `keys` (of GOAL_OBJECTS) from `estimate`; see module docstring.

    Args:
        estimate: perception's scene estimate (base frame).
        info: the episode's task facts a robot knows without looking: the peg part name and its
            symmetries ("peg", "symmetries", "centroid"), the grasp plan ("grasp_in_peg" under
            "targets"), the grasp command ("peg_in_tcp" or "grasp_offset"). Never object poses.
        tcp_pose: (7,) measured TCP pose [m, xyzw].
        keys: goals to build; the first that cannot be built sets `failure`.
        min_fitness: the estimator's threshold (for the failure's wording).
        peg_in_tcp: (7,) in-hand pose of a held peg (default: `in_hand_pose(info)`).
        in_hand_source: its name in results (with `peg_in_tcp`).
    """
    for key in keys:
        check_choice("goal", key, tuple(GOAL_OBJECTS))
    if peg_in_tcp is None:
        peg_in_tcp, in_hand_source = in_hand_pose(info)
    targets: dict[str, np.ndarray] = {}
    poses: dict[str, np.ndarray] = {}
    failures = []
    tcp = np.asarray(tcp_pose, float)
    for key in keys:
        missing = _found(estimate, GOAL_OBJECTS[key], min_fitness)
        if not missing and key in ("hole", "tcp_goal") and estimate.target_hole is None:
            missing = "the board was found but not its target hole"
        if not missing and key == "pocket" and POCKET not in estimate.frames:
            missing = "the fixture was found but its model has no pocket frame"
        if missing:
            failures.append(f"goal {key!r}: {missing}")
            continue
        target = {"grasp": estimate.objects["peg"].pose, "pocket": estimate.frames.get(POCKET)}.get(
            key, estimate.target_hole
        )
        try:
            targets[key], _ = policy_goal(key, target, info, tcp, peg_in_tcp)
        except ParameterError as e:
            failures.append(str(e))
            continue
        if key == "grasp":
            poses["peg"] = np.asarray(target, float)
            continue
        if key == "pocket":
            poses[FIXTURE_OBJECT] = np.asarray(estimate.objects[FIXTURE_OBJECT].pose, float)
            continue
        poses["board"] = np.asarray(estimate.objects["board"].pose, float)
        if key == "tcp_goal":
            poses["peg"] = compose(tcp, np.asarray(peg_in_tcp, float))  # where the hand holds the peg
            poses["peg_goal"] = compose(targets[key], np.asarray(peg_in_tcp, float))
    used_hand = "tcp_goal" in targets
    source = in_hand_source if used_hand else ""
    return PerceivedGoals(targets, source, estimate, "; ".join(failures), poses=poses)


def perceive_goals(
    env, estimator: PoseEstimator, config: PerceivedGoalConfig, rng: np.random.Generator, keys=tuple(GOAL_OBJECTS)
) -> PerceivedGoals:
    """Render the cloud from `env` now, estimate, and build the goals `keys` (see module docstring).
    Reads from `env` only what a robot has: camera images (through its sensor model), the
    measured TCP pose and finger opening, the task facts."""
    import time

    views, cameras = scene_views(env, config, rng)
    cloud = fused_cloud(env, config, views, rng)
    info, tcp = env.episode.info, env.tcp_pose()
    # The robot's self-filter: its hand beside an object (a peg it just let go of) is not part of it.
    estimate = estimator.estimate(without_hand(cloud, tcp, env.backend.robot_state().gripper_width))
    commanded, commanded_source = in_hand_pose(info)
    held, peg_in_tcp, source = None, None, ""
    if "tcp_goal" in keys and commanded is not None:  # a held peg: look at it in the hand
        t0 = time.perf_counter()
        held = estimator.in_hand(cloud, tcp, env.backend.robot_state().gripper_width, views=views)
        estimate = dataclasses.replace(estimate, seconds=estimate.seconds + time.perf_counter() - t0)
        if config.in_hand == "estimated" and held.pose is None:
            why = f"fitness {held.fitness:.3f} on {held.points} points below min_fitness"
            failure = f"goal 'tcp_goal': the held peg was not found in the hand ({why})"
            return PerceivedGoals({}, "", estimate, failure, held, cameras=tuple(cameras))
        spec = _peg_spec(info, "tcp_goal")
        peg_in_tcp, source = held_in_hand(config, commanded, held.pose, spec, commanded_source)
    goals = goals_from_estimate(estimate, info, tcp, tuple(keys), config.perception.min_fitness, peg_in_tcp, source)
    return goals._replace(held=held, cameras=tuple(cameras))


def perception_errors(
    estimate: SceneEstimate, truth: dict, info: dict, estimator: PoseEstimator, held=None, tcp_pose=None
) -> dict:
    """{"board"|"hole"|"fixture"|"pocket"|"peg": {"translation_mm", "rotation_deg"} or None (not
    found)} of `estimate` against the simulator's object poses `truth` (key -> (7,)), plus each
    object's fitness and the estimate's seconds. Peg errors as `fmb bench perception`: at its section centroid at half
    length, modulo its fitting turns. Objects absent from `truth` are left out. With the in-hand
    estimate `held` (`PerceivedGoals.held`) and the measured `tcp_pose`, "in_hand" (its error in
    the TCP frame against the simulator's peg-in-TCP pose) and "in_hand_commanded" (the commanded
    grasp's, `in_hand_pose`), measured like the peg's, stand in for "peg"."""
    from sim.objects import peg_spec
    from sim.perception import matrix_to_pose, pose_to_matrix
    from sim.tasks.geometry import symmetry_angles

    out: dict = {}
    pairs = {}
    if "board" in truth:
        pairs["board"] = (estimate.objects.get("board"), truth["board"], (0.0,), (0.0, 0.0, 0.0))
        frame = estimator.models[0].frames.get(info.get("hole", ""))
        if frame is not None:
            true_hole = matrix_to_pose(pose_to_matrix(truth["board"]) @ pose_to_matrix(frame))
            pairs["hole"] = (estimate.target_hole, true_hole, (0.0,), (0.0, 0.0, 0.0))
    if FIXTURE_OBJECT in truth:
        fixture = next((m for m in estimator.models if m.key == FIXTURE_OBJECT), None)
        if fixture is not None:  # 180 deg about its vertical axis it looks (and holds) the same
            half, origin = (0.0, np.pi), (0.0, 0.0, 0.0)
            true_fixture = np.asarray(truth[FIXTURE_OBJECT], float)
            true_pocket = matrix_to_pose(pose_to_matrix(true_fixture) @ pose_to_matrix(fixture.frames["pocket"]))
            pairs[FIXTURE_OBJECT] = (estimate.objects.get(FIXTURE_OBJECT), true_fixture, half, origin)
            pairs["pocket"] = (estimate.frames.get(POCKET), true_pocket, half, origin)
    if "peg" in truth:
        spec = peg_spec(info["peg"])
        centroid = (*spec.section().centroid.coords[0], 0.5 * spec.length_m)
        turns = symmetry_angles(spec, 0.0005)
        if held is None:  # a held peg's scene estimate means nothing: its in-hand one stands for it
            pairs["peg"] = (estimate.objects.get("peg"), truth["peg"], turns, centroid)
        elif tcp_pose is not None:
            true_held = compose(inverse(np.asarray(tcp_pose, float)), truth["peg"])
            pairs["in_hand"] = (held.pose, true_held, turns, centroid)
            commanded, _ = in_hand_pose(info)
            if commanded is not None:
                pairs["in_hand_commanded"] = (commanded, true_held, turns, centroid)
    for key, (est, tru, symmetries, centre) in pairs.items():
        est_pose = getattr(est, "pose", est)
        if est_pose is None:
            out[key] = None
            continue
        t, r = pose_error(est_pose, tru, symmetries, centre)
        out[key] = {"translation_mm": round(t * 1e3, 2), "rotation_deg": round(float(np.degrees(r)), 2)}
    out["fitness"] = {k: round(float(e.fitness), 3) for k, e in estimate.objects.items()}
    out["seconds"] = round(float(estimate.seconds), 3)
    return out


def summarize_episodes(rows: list[dict]) -> dict:
    """Aggregate of the per-episode rows of a perceived-goal evaluation: goal sources, perception
    failures (count and reasons), median (and max) perception errors per object, safety filter
    verdict totals and the episodes the filter refused a command in, and the hand-eye refinement's
    views refined and the cameras' calibration error at the table centre before and after."""
    sources = Counter(r.get("goals", "") for r in rows)
    failures = [r for r in rows if r.get("perception_failure")]
    errors: dict = {}
    for key in ("board", "hole", "fixture", "pocket", "peg", "in_hand", "in_hand_commanded"):
        found = [r["perception"][key] for r in rows if (r.get("perception") or {}).get(key)]
        missed = sum(1 for r in rows if r.get("perception") and key in r["perception"] and not r["perception"][key])
        if not found and not missed:
            continue
        errors[key] = {"missed": missed, "n": len(found)}
        for unit in ("translation_mm", "rotation_deg"):
            values = [f[unit] for f in found]
            if values:
                errors[key][unit] = {"median": round(float(np.median(values)), 2), "max": round(max(values), 2)}
    verdicts: Counter = Counter()
    for r in rows:
        verdicts.update(r.get("safety", {}))
    cameras = [c for r in rows for c in r.get("hand_eye") or ()]
    hand_eye = {}
    if cameras:
        hand_eye = {"views": len(cameras), "applied": sum(1 for c in cameras if c["applied"])}
        for key in ("error_before_mm", "error_after_mm"):
            values = [c[key] for c in cameras if key in c]
            if values:
                hand_eye[key] = {"median": round(float(np.median(values)), 3), "max": round(max(values), 3)}
    in_hand = Counter(r.get("in_hand_source", "") for r in rows if r.get("in_hand_source"))
    return {
        "sources": dict(sources),
        "in_hand_sources": dict(in_hand),
        "perception_failures": len(failures),
        "perception_failure_reasons": [{"seed": r["seed"], "reason": r["perception_failure"]} for r in failures],
        "perception_errors": errors,
        "safety_verdicts": dict(sorted(verdicts.items())),
        "episodes_with_rejected_commands": sum(1 for r in rows if r.get("safety", {}).get("rejected")),
        "hand_eye": hand_eye,
    }
