"""Insert: a peg held tip-down above its board goes into its hole (FMB primitive "insert").

Start: the peg is in the closed gripper, grasped 20-40 mm below its base (on its axis, or off a
neck as `standing_grasp_x` says); its tip hovers 20-60 mm above the board, within +-20 mm of the
hole axis and +-10 deg of the hole's yaw. The board's
centre is drawn within a 32 x 32 cm box around (0.52, 0.00) m with +-10 deg yaw (FMB's range),
redrawn while the target hole lies outside 0.36-0.74 m from the robot base (the arm's easy reach).

Success (all at once):
    - the peg tip is at least 20 mm below the board's top face (40 % of the 50 mm board),
    - the peg's centroid axis (the line through its section's centroid along its axis) passes
      within 4 mm of the hole's centroid axis at the top face,
    - the peg axis is within 5 deg of the hole axis.
The centroid, not the peg frame's origin: a peg goes in at any of its fitting turns about the
centroid (`symmetry_angles`), and where the origin is off the centroid (a 3-prong S: 4.2 mm) a
peg fully in at a 120-deg turn had its origin's axis 7 mm from the hole's; for the turn 0 both
measures agree.
Failure: the peg left the hand (its base more than 50 mm from the TCP) before success.
Progress: 0.5 x lateral alignment (1 at the axis, 0 beyond 30 mm) + 0.5 x depth (0 with the tip
30 mm above the top face, 1 at 20 mm below it).
Step limit: 100 (FMB).
"""

from __future__ import annotations

import numpy as np

from cad.fmb_reference import LENGTHS
from sim.objects import board_for, peg_part
from sim.randomization import PLACEMENTS, BoardPlacement
from sim.scene import SceneObject
from sim.spatial import about, axis_angle_between, compose, flip_z, inverse, pose, quat_from_yaw, z_axis
from sim.tasks.base import EpisodeStart, Evaluation, Task, WorldView, peg_facts, register_task
from sim.tasks.geometry import comfortable_grasp, held_peg_in_tcp, inserted_peg_pose, symmetry_angles
from sim.tasks.grasp import standing_grasp_x
from sim.tasks.skill_goals import held_tcp_goal

BOARD_CENTRE = np.array([0.52, 0.0])
REACH = (0.36, 0.74)  # [m] horizontal distance of the target hole from the robot base
BOARD_HALF_RANGE = np.array([0.16, 0.16])  # [m], FMB: 32 x 32 cm
BOARD_YAW_RANGE = np.radians(10.0)
SUCCESS_DEPTH = 0.020
SUCCESS_LATERAL = 0.004
SUCCESS_TILT = np.radians(5.0)
DROP_DISTANCE = 0.05


@register_task
class InsertTask(Task):
    """See module docstring."""

    name = "insert"
    max_steps = 100

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        spec = self.pool.draw(rng)
        peg = peg_part(spec)
        board, hole_key = board_for(spec, self.pool.clearance)
        board_pose, hole = place_board(board, hole_key, rng, placement=PLACEMENTS[self.placement])
        # Peg pose at the start: aligned with the hole, then offset and turned.
        hover = rng.uniform(0.02, 0.06)
        aligned = inserted_peg_pose(hole, spec, depth=-hover)
        offset = pose([*rng.uniform(-0.02, 0.02, 2), 0.0], quat_from_yaw(rng.uniform(-1, 1) * np.radians(10.0)))
        peg_pose = about(hole[:3], offset, aligned)
        grasp = rng.uniform(0.02, 0.04)
        held = held_peg_in_tcp(grasp)
        held[0] = -standing_grasp_x(spec.section())  # off a neck, where the grasp task holds it
        tcp = comfortable_grasp(peg_pose, held)
        section = spec.section()
        info = insert_info(spec, board.name, hole_key, hole, grasp, self.pool.clearance)
        # The in-hand pose the start's grasp was commanded with (peg frame in the TCP frame): a
        # robot knows it from its own grasp command (sim.perceived_goals.in_hand_pose). The
        # skill's command in the hand's terms: where the TCP is when the held peg is in, at the
        # fitting turn nearest the peg's start (what the expert aims at).
        info["peg_in_tcp"] = compose(inverse(tcp), peg_pose).tolist()
        info["targets"]["tcp_goal"] = held_tcp_goal(info, spec, hole, tcp, info["peg_in_tcp"]).tolist()
        return EpisodeStart(
            objects=[SceneObject("board", board, fixed=True), SceneObject("peg", peg)],
            object_poses={"board": board_pose, "peg": peg_pose},
            tcp_pose=tcp,
            gripper_width=float(section.bounds[3] - section.bounds[1]),
            gripper_closed=True,
            info=info,
        )

    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        hole = np.asarray(start.info["targets"]["hole"])
        peg = world.object_pose("peg")
        tip, axis = peg_tip(peg, start)
        hole_axis = z_axis(hole[3:])
        rel = tip - hole[:3]
        depth = -float(rel @ hole_axis)
        # Where the peg's centroid axis crosses the top face, against the hole's centroid there.
        centroid = pose(start.info.get("centroid", [0.0, 0.0, 0.0]))
        through = compose(peg, centroid)[:3]
        t = (hole[:3] - through) @ hole_axis / (axis @ hole_axis) if abs(axis @ hole_axis) > 1e-6 else 0.0
        crossing = through + t * axis
        centre = compose(np.asarray(start.info["targets"]["peg_goal"]), centroid)[:3]
        off = crossing - centre
        lateral = float(np.linalg.norm(off - (off @ hole_axis) * hole_axis))
        tilt = axis_angle_between(flip_z(peg[3:]), hole[3:])
        success = depth >= SUCCESS_DEPTH and lateral <= SUCCESS_LATERAL and tilt <= SUCCESS_TILT
        dropped = float(np.linalg.norm(peg[:3] - world.tcp_pose()[:3])) > DROP_DISTANCE + start.info["grasp_offset"]
        progress = (
            1.0
            if success
            else 0.5 * (1 - min(1.0, lateral / 0.03))
            + 0.5 * float(np.clip((depth + 0.03) / (SUCCESS_DEPTH + 0.03), 0.0, 1.0))
        )
        metrics = {"depth": depth, "lateral": lateral, "tilt": tilt}
        return Evaluation(success, min(progress, 1.0), dropped and not success, metrics)


def place_board(
    board,
    hole_key: str,
    rng: np.random.Generator,
    centre=BOARD_CENTRE,
    half_range=BOARD_HALF_RANGE,
    placement: BoardPlacement | None = None,
):
    """(board pose (7,), target hole pose (7,)): the board's centre uniform in `centre` +-
    `half_range` [m] with +-10 deg yaw (or drawn by `placement` around `centre`, see
    sim.randomization.PLACEMENTS), redrawn (up to 100 times) while the hole is out of REACH."""
    frame = board.frames[hole_key]
    placement = placement or BoardPlacement(tuple(half_range), BOARD_YAW_RANGE)
    for _ in range(100):
        offset, yaw = placement.draw(rng)
        xy = np.asarray(centre) + offset
        board_pose = pose([xy[0], xy[1], 0.0], quat_from_yaw(yaw))
        hole = compose(board_pose, pose(frame.position, frame.quaternion))
        if REACH[0] <= np.hypot(*hole[:2]) <= REACH[1]:
            break
    return board_pose, hole


def insert_info(spec, board_name: str, hole_key: str, hole: np.ndarray, grasp_offset: float, clearance: float) -> dict:
    """The insert task's episode facts and targets for the hole at `hole` (7,).

    "symmetries" (turns about the section's centroid after which the peg still fits, see
    `symmetry_angles`) and "centroid" (that point in the peg frame [m]) let a controller aim at
    whichever fitting orientation is nearest, rather than turn the peg all the way to `peg_goal`.
    """
    centroid = spec.section().centroid
    return {
        **peg_facts(spec),
        "board": board_name,
        "hole": hole_key,
        "grasp_offset": float(grasp_offset),
        "symmetries": list(symmetry_angles(spec, clearance)),
        "centroid": [centroid.x, centroid.y, 0.0],
        "targets": {
            "hole": np.asarray(hole).tolist(),
            "peg_goal": inserted_peg_pose(hole, spec, SUCCESS_DEPTH + 0.005).tolist(),
        },
    }


def peg_tip(peg_pose: np.ndarray, start: EpisodeStart) -> tuple[np.ndarray, np.ndarray]:
    """Tip position (3,) [m] and unit axis from base to tip (3,) of the peg at `peg_pose`."""
    axis = z_axis(peg_pose[3:])
    return peg_pose[:3] + LENGTHS[start.info["length"]] * axis, axis
