"""Perception's pose error in simulation, against the simulator's ground truth (`fmb bench perception`).

For each of `scenes` seeded scenes of `task` (default `vertical_chain`: a peg standing on its tip
beside its board, as a long-horizon task starts), render the fused point cloud of the side cameras
exactly as `fmb_sim_robot` publishes it, estimate the board, target hole and peg poses with
`sim.perception.PoseEstimator` (given only the peg's part name, as an operator would), and
compare with the simulator's object poses:

- board and hole: translation of the frame origin [mm], rotation angle [deg];
- fixture and its pocket (scenes with the reorientation fixture: `horizontal_chain`,
  `place_on_fixture`, `regrasp`, where the peg stands in the pocket): the same, modulo the
  fixture's half turn about the vertical; a scene without a board (`regrasp`) reports none;
- peg: translation of its section centroid at half length [mm] and the rotation angle [deg]
  modulo the turns under which it still fits its hole (`sim.tasks.geometry.symmetry_angles`: a
  hexagon turned 60 deg is the same object); `peg_end_flip_ok` also forgives turning it end for end
  (a half turn about an axis across it), which the cloud cannot see (only a 1 mm tip chamfer differs),
  and `end_flips` counts the scenes where that was the difference.

An object that is not found counts as a miss (reported, and left out of the error figures).
The cameras see through `sensor` (`sim.sensor`; default "default": a D415-like depth noise,
missing returns at edges and grazing angles, a per-episode calibration error; "exact": the
renderer's depth). With `hand_eye` (default on) each camera's calibration is refined on the
robot's hand before the cloud is fused (`sim.perception.hand_eye`), as `fmb eval`'s perception
and `fmb_sim_robot` (parameter `hand_eye`) do. `noise` adds Gaussian noise of that standard
deviation [m] to every point on top.

In-hand: in starts with the peg in the closed gripper (the `insert` task), the peg's pose in the
TCP frame is estimated with `PoseEstimator.in_hand` (hand and finger points removed given the
measured TCP pose and opening) as `fmb eval` does (from the refined cameras' views and the cloud
fused from them, the tip placed by the free space the views see past it) and compared with the
simulator's, as for the peg (`in_hand`); `in_hand_lowest_seen` is the same estimate with its tip
at the lowest points seen (the rule without the depth images). Per scene, `in_hand*_axial_mm`
is the error along the peg's axis (+: towards its tip).

Tracking: after each scene estimate the simulation runs one control period (10 Hz) with the arm
held, a new cloud is rendered and `PoseEstimator.track` refines the estimate on it;
`seconds_per_update` is its wall time and `tracked_*` its errors. With `hand_eye`, the
refinement of the scene's two views is timed on its own (`seconds_per_hand_eye`: a robot pays it
before each scene estimate) and `hand_eye_views_refined` counts the views it corrected.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

from fmb_core.errors import check_range
from sim import parallel
from sim.parallel import Executor
from sim.perception.estimator import PerceptionConfig, PoseEstimator
from sim.perception.hand_eye import HandEyeConfig, refine_views, table_centre
from sim.perception.models import end_flips, matrix_to_pose, pose_error, pose_to_matrix, scene_models
from sim.pointcloud import fuse_point_cloud
from sim.sensor import SensorModel, make_sensor


def _summary(values: list[float], scale: float, digits: int = 3) -> dict:
    a = np.asarray(values, float) * scale
    if a.size == 0:
        return {"n": 0}
    return {
        "n": int(a.size),
        "median": round(float(np.median(a)), digits),
        "p90": round(float(np.percentile(a, 90)), digits),
        "max": round(float(a.max()), digits),
    }


KEYS = (
    "board",
    "hole",
    "fixture",
    "pocket",
    "peg",
    "peg_end_flip_ok",
    "tracked_board",
    "tracked_peg",
    "in_hand",
    "in_hand_lowest_seen",
)
"""What a scene's estimate is compared on (module docstring)."""


@dataclasses.dataclass(frozen=True)
class PerceptionBench:
    """What every scene of one `evaluate_perception` run shares (shipped to each worker once)."""

    task: str
    seed: int
    image_size: int
    points: int
    noise: float
    config: PerceptionConfig
    sensor: SensorModel
    hand_eye: bool


def evaluate_perception(
    scenes: int = 20,
    task: str = "vertical_chain",
    seed: int = 0,
    image_size: int = 256,
    points: int = 40_000,
    noise: float = 0.0,
    config: PerceptionConfig = PerceptionConfig(),
    progress: bool = True,
    sensor: SensorModel | str = "default",
    hand_eye: bool = True,
    executor: Executor | None = None,
) -> dict:
    """Median / p90 / max pose errors over `scenes` scenes (seeds seed .. seed + scenes - 1); see
    module docstring. Returns a JSON-ready dict.

    The scenes run on `executor` (`sim.parallel`; default: this process): local worker processes
    or Ray actors, each scene's result depending only on its seed. Timings are each worker's own:
    with more workers than idle cores they include the wait for a core.
    """
    check_range("scenes", scenes, 1, 10_000)
    check_range("image_size", image_size, 32, 1024, unit="px")
    check_range("points", points, 1000, 1_000_000)
    check_range("noise", noise, 0.0, 0.05, unit="m")
    sensor = make_sensor(sensor) if isinstance(sensor, str) else sensor
    executor = executor or Executor()
    bench = PerceptionBench(task, seed, image_size, points, noise, config, sensor, hand_eye)
    seeds = range(seed, seed + scenes)
    done = {}
    try:
        scenes_run = parallel.imap(_init, (bench,), _scene, seeds, executor)
        for result in tqdm(scenes_run, total=scenes, desc="perception scenes", disable=not progress):
            done[result["row"]["seed"]] = result
    finally:
        _close()  # the env of a run in this process (workers close theirs when they exit)
    errors = {k: ([], []) for k in KEYS}
    present, missed = set(), dict.fromkeys(KEYS, 0)
    present |= {"in_hand", "in_hand_lowest_seen"}  # keys some scene had a truth for (in_hand*: n = 0 unheld)
    for s in seeds:  # in seed order, whatever order the workers finished in
        for key, error in done[s]["errors"].items():
            present.add(key)
            if error is None:
                missed[key] += 1
            else:
                errors[key][0].append(error[0])
                errors[key][1].append(error[1])
    results = [done[s] for s in seeds]
    flips = sum(r["flip"] for r in results)
    return {
        "task": task,
        "scenes": scenes,
        "seeds": [seed, seed + scenes - 1],
        "cloud": f"side_1 + side_2 cameras, {image_size}x{image_size} px, {points} points, noise {noise * 1e3:g} mm",
        "sensor": {k: round(float(v), 6) for k, v in dataclasses.asdict(sensor).items()},
        "hand_eye": "on" if hand_eye else "off",
        "executor": executor.describe(),
        **{
            key: {
                "translation_mm": _summary(errors[key][0], 1e3),
                "rotation_deg": _summary(errors[key][1], 180.0 / np.pi),
                "missed": missed[key],
            }
            for key in KEYS
            if key in present
        },
        "end_flips": flips,
        "end_flip_share": round(flips / max(1, len(errors["peg"][0])), 3),
        "seconds_per_estimate": _summary([r["seconds"] for r in results], 1.0),
        "seconds_per_update": _summary([r["update"] for r in results if r["update"] is not None], 1.0),
        "hand_eye_views_refined": [sum(r["refined"] for r in results), 2 * scenes if hand_eye else 0],
        "seconds_per_hand_eye": _summary([r["refine"] for r in results if r["refine"] is not None], 1.0),
        "per_scene": [r["row"] for r in results],
    }


_WORKER: dict = {}
"""A worker's warm state: the bench settings, its environment and its estimators by scene kind."""


def _init(bench: PerceptionBench) -> None:
    from sim.env import make_env

    _close()
    _WORKER["bench"] = bench
    _WORKER["estimators"] = {}
    _WORKER["env"] = make_env(
        bench.task,
        cameras=("side_1", "side_2"),
        image_size=(bench.image_size, bench.image_size),
        point_cloud=bench.points,
        sensor=bench.sensor,
        hand_eye=HandEyeConfig(enabled=bench.hand_eye),
    )


def _close() -> None:
    env = _WORKER.pop("env", None)
    if env is not None:
        env.close()


def _scene(s: int) -> dict:
    """One scene: {"row": its per-scene line, "errors": {key: (translation [m], rotation [rad]) or
    None (missed)} for the keys it has a truth for, "flip", "seconds", "update", "refine", "refined"}."""
    import time

    from sim.objects import peg_spec
    from sim.tasks.geometry import symmetry_angles

    bench, env, estimators = _WORKER["bench"], _WORKER["env"], _WORKER["estimators"]
    rng = np.random.default_rng([bench.seed, s])  # the added noise: the scene's own
    image_size, points = bench.image_size, bench.points
    table = table_centre(env.config.workspace)
    obs, info = env.reset(seed=s)
    episode, truth = info["episode"], info["object_poses"]
    peg_name = episode["peg"]
    scene = (peg_name, "fixture" in truth)
    if scene not in estimators:
        estimators[scene] = PoseEstimator(scene_models(peg_name, seed=bench.seed, fixture=scene[1]), bench.config)
    estimator = estimators[scene]
    cloud = obs["points"][:, :3].astype(float)
    if bench.noise:
        cloud = cloud + rng.normal(0.0, bench.noise, cloud.shape)
    estimate = estimator.estimate(cloud)
    out = {"seconds": estimate.seconds, "update": None, "refine": None, "refined": 0, "flip": False}
    if bench.hand_eye:  # what the cloud's refinement cost, timed on this scene's views again
        views = env.camera_views(("side_1", "side_2"), image_size, np.random.default_rng(s))
        state = env.backend.robot_state()
        t0 = time.perf_counter()
        _, fits = refine_views(views, state.tcp_pose, state.gripper_width, env.config.hand_eye, table)
        out["refine"] = time.perf_counter() - t0
        out["refined"] = sum(f.applied for f in fits)
    spec = peg_spec(peg_name)
    models = {m.key: m for m in estimator.models}
    centroid = (*spec.section().centroid.coords[0], 0.5 * spec.length_m)
    found = {}
    if "board" in truth:
        hole_frame = models["board"].frames[episode["hole"]]
        true_hole = matrix_to_pose(pose_to_matrix(truth["board"]) @ pose_to_matrix(hole_frame))
        found["board"] = (estimate.objects["board"].pose, truth["board"], (0.0,), (0.0, 0.0, 0.0))
        found["hole"] = (estimate.target_hole, true_hole, (0.0,), (0.0, 0.0, 0.0))
    if "fixture" in truth:
        true_pocket = pose_to_matrix(truth["fixture"]) @ pose_to_matrix(models["fixture"].frames["pocket"])
        half = (0.0, np.pi)  # the fixture turned half a turn looks (and holds) the same
        found["fixture"] = (estimate.objects["fixture"].pose, truth["fixture"], half, (0.0, 0.0, 0.0))
        found["pocket"] = (estimate.frames.get("fixture/pocket"), matrix_to_pose(true_pocket), half, (0, 0, 0))
    found["peg"] = (estimate.objects["peg"].pose, truth["peg"], symmetry_angles(spec, 0.0005), centroid)
    row = {"seed": s, "part": peg_name, "seconds": round(estimate.seconds, 3)}
    found["peg_end_flip_ok"] = found["peg"]
    if env.episode.gripper_closed:  # the peg starts in the hand: its pose in the TCP frame
        # As `fmb eval` looks at it: the refined cameras' views, the cloud fused from them.
        state = env.backend.robot_state()
        views = env.camera_views(("side_1", "side_2"), image_size, np.random.default_rng(s))
        views, _ = refine_views(views, state.tcp_pose, state.gripper_width, env.config.hand_eye, table)
        ws = env.config.workspace
        held_cloud = fuse_point_cloud(views, points, ws.low, ws.high, np.random.default_rng(s))
        true_held = matrix_to_pose(np.linalg.inv(pose_to_matrix(state.tcp_pose)) @ pose_to_matrix(truth["peg"]))
        for key, with_views in (("in_hand", views), ("in_hand_lowest_seen", None)):
            held = estimator.in_hand(held_cloud, state.tcp_pose, state.gripper_width, views=with_views)
            found[key] = (held.pose, true_held, found["peg"][2], centroid)
            if held.pose is not None:  # along the peg's axis: the cameras' weakest direction
                along = pose_to_matrix(held.pose)[:3, 3] - pose_to_matrix(true_held)[:3, 3]
                row[f"{key}_axial_mm"] = round(float(along @ pose_to_matrix(true_held)[:3, 2]) * 1e3, 2)
    if "board" in truth and estimate.poses.keys() == set(models):
        obs, *_ = env.step(np.r_[np.zeros(6), float(env.episode.gripper_closed)])
        truth = {k: env.object_pose(k) for k in ("board", "peg")}
        cloud = obs["points"][:, :3].astype(float)
        if bench.noise:
            cloud = cloud + rng.normal(0.0, bench.noise, cloud.shape)
        tracked = estimator.track(cloud, estimate)
        out["update"] = tracked.seconds
        row["update_seconds"] = round(tracked.seconds, 3)
        found["tracked_board"] = (tracked.objects["board"].pose, truth["board"], (0.0,), (0.0, 0.0, 0.0))
        found["tracked_peg"] = (tracked.objects["peg"].pose, truth["peg"], found["peg"][2], centroid)
    elif "board" in truth:
        found["tracked_board"] = found["tracked_peg"] = (None, None, None, None)
    errors = {}
    for key, (est, tru, symmetries, centre) in found.items():
        if est is None:
            errors[key] = None
            row[key] = None
            continue
        t, r = pose_error(est, tru, symmetries, centre)
        if key == "peg_end_flip_ok":
            flipped = [
                pose_error(est, matrix_to_pose(pose_to_matrix(tru) @ F), symmetries, centre)[1]
                for F in end_flips(spec.length_m)
            ]
            out["flip"] = bool(min(flipped) < r)
            r = min([r, *flipped])
        errors[key] = (float(t), float(r))
        row[key] = {"translation_mm": round(t * 1e3, 2), "rotation_deg": round(float(np.degrees(r)), 2)}
    return out | {"row": row, "errors": errors}
