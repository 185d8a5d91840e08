"""Regrasp: take a peg standing tip-down in the fixture from above and lift it out, held the way
insertion wants it (FMB primitive "regrasp", between place_on_fixture and insert).

Start: the peg stands on the pocket floor, turned to one of the four yaws the square pocket
allows (+-5 deg); the gripper is open, pointing down, 25-32 cm above the table within +-5 cm of
(0.45, 0.15) m. The fixture stands as `fixture_layout` says.

Success: the peg is held by both fingers and its tip is at least 10 mm above the fixture's top
face. Progress: 0.5 x closeness of the TCP to the grasp pose (0 beyond 20 cm) + 0.5 x how far
the tip has risen towards that height once held. Step limit: 70 (FMB).
"""

from __future__ import annotations

import numpy as np

from sim import panda
from sim.objects import fixture_part, peg_part
from sim.scene import SceneObject
from sim.spatial import compose, z_axis
from sim.tasks.base import EpisodeStart, Evaluation, Task, WorldView, peg_facts, register_task
from sim.tasks.fixture_layout import draw_fixture_pose, fixture_top, standing_in_pocket
from sim.tasks.grasp import standing_grasp_in_peg, start_above_table
from sim.tasks.skill_goals import grasp_target

SUCCESS_CLEARANCE = 0.010


def regrasp_info(spec, fixture_pose: np.ndarray) -> dict:
    """The regrasp task's episode facts and targets for a peg in the fixture at `fixture_pose`.

    The grasp is the standing grasp (`standing_grasp_in_peg`: 25 mm below the base); which of its
    two 180-degree turns the hand uses is the expert's choice (it depends on how the peg stands
    when it gets there).
    """
    return {
        **peg_facts(spec),
        "length_m": spec.length_m,
        "targets": {
            "grasp_in_peg": standing_grasp_in_peg(spec).tolist(),
            "fixture_top": fixture_top(fixture_pose),
        },
    }


@register_task
class RegraspTask(Task):
    """See module docstring."""

    name = "regrasp"
    max_steps = 70

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        spec = self.pool.draw(rng)
        peg = peg_part(spec)
        fixture = fixture_part()
        fixture_pose = draw_fixture_pose(rng)
        yaw = np.radians(90.0 * rng.integers(4) + rng.uniform(-5.0, 5.0))
        peg_pose = standing_in_pocket(fixture_pose, spec.length_m, yaw, lift=0.001)
        tcp = start_above_table(rng, centre=(0.45, 0.15), heights=(0.25, 0.32))
        info = regrasp_info(spec, fixture_pose)
        info["targets"]["grasp"] = grasp_target(peg_pose, info["targets"]["grasp_in_peg"]).tolist()
        info["targets"]["peg_start"] = peg_pose.tolist()
        return EpisodeStart(
            [SceneObject("fixture", fixture, fixed=True), SceneObject("peg", peg)],
            {"fixture": fixture_pose, "peg": peg_pose},
            tcp,
            panda.GRIPPER_OPEN,
            False,
            info,
        )

    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        t = start.info["targets"]
        peg = world.object_pose("peg")
        tip = peg[:3] + start.info["length_m"] * z_axis(peg[3:])
        rise = float(tip[2] - t["fixture_top"])
        held = world.touching("peg", "left_finger") and world.touching("peg", "right_finger")
        success = held and rise >= SUCCESS_CLEARANCE
        grasp = compose(peg, np.asarray(t["grasp_in_peg"]))
        reach = 1 - min(1.0, float(np.linalg.norm(world.tcp_pose()[:3] - grasp[:3])) / 0.2)
        start_rise = -start.info["length_m"] * 0.4  # roughly where the tip starts: deep in the pocket
        lift = float(np.clip((rise - start_rise) / (SUCCESS_CLEARANCE - start_rise), 0.0, 1.0))
        progress = 1.0 if success else 0.5 * reach + (0.5 * lift if held else 0.0)
        return Evaluation(success, min(progress, 1.0), False, {"tip_above_fixture": rise, "held": float(held)})
