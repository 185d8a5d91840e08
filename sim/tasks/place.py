"""Place on fixture: stand a peg held on its side upright, tip down, in the fixture's pocket and
let go (FMB primitive "place_on_fixture", between grasp and regrasp for a lying peg).

Start: the peg is held as `grasp` leaves a lying peg (fingers across it, 30 % of its length from
the base, axis horizontal), lifted 15-20 cm: the reset lays it in the grasp area and a warm-up
closes the fingers and lifts, so the grasp is a physical one. The fixture stands as
`fixture_layout` says.

Success: the peg's tip is inside the pocket (within its square, below the fixture's top face by
at least 20 mm), its axis is within 15 deg of vertical with the tip down, and neither finger
touches it. Progress: 0.4 x uprightness + 0.3 x closeness of the tip to the pocket axis (0 beyond
20 cm) + 0.3 x tip depth into the pocket (1 at 20 mm). Step limit: 70 (FMB).
"""

from __future__ import annotations

import numpy as np

from sim import panda
from sim.objects import fixture_part, peg_part
from sim.scene import SceneObject
from sim.spatial import axis_angle_between, compose, inverse, pose, z_axis
from sim.tasks.base import EpisodeStart, Evaluation, Task, WorldView, peg_facts, register_task
from sim.tasks.fixture_layout import draw_fixture_pose, fixture_top, pocket_frame
from sim.tasks.geometry import comfortable_grasp
from sim.tasks.grasp import AREA_CENTRE, AREA_HALF, lying_grasp, lying_pose

SUCCESS_DEPTH = 0.020
SUCCESS_TILT = np.radians(15.0)


def place_info(spec, fixture_pose: np.ndarray) -> dict:
    """The place task's episode facts and targets for the fixture at `fixture_pose` (7,)."""
    return {
        **peg_facts(spec),
        "length_m": spec.length_m,
        "targets": {
            "pocket": pocket_frame(fixture_pose).tolist(),
            "fixture_top": fixture_top(fixture_pose),
            "pocket_half": fixture_part().params["pocket"] / 2,
        },
    }


@register_task
class PlaceTask(Task):
    """See module docstring."""

    name = "place_on_fixture"
    max_steps = 70

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        spec = self.pool.draw(rng)
        peg = peg_part(spec)
        fixture = fixture_part()
        fixture_pose = draw_fixture_pose(rng)
        # The peg starts lying in the grasp area; the warm-up closes the fingers on it and lifts
        # it 15-20 cm, so the episode starts from a physically made grasp.
        grasp_in_peg, width = lying_grasp(spec)
        xy = AREA_CENTRE + rng.uniform(-1, 1, 2) * AREA_HALF
        peg_pose, _, _ = lying_pose(spec.section(), spec.length_m, xy, rng.uniform(-np.pi, np.pi))
        tcp = comfortable_grasp(peg_pose, inverse(grasp_in_peg))
        lifted = tcp.copy()
        lifted[2] += rng.uniform(0.15, 0.20)
        warmup = [(tcp, True)] * 4 + [(lifted, True)] * 8
        info = place_info(spec, fixture_pose)
        return EpisodeStart(
            [SceneObject("fixture", fixture, fixed=True), SceneObject("peg", peg)],
            {"fixture": fixture_pose, "peg": peg_pose},
            tcp,
            panda.GRIPPER_OPEN,
            False,
            info,
            warmup,
        )

    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        t = start.info["targets"]
        pocket = np.asarray(t["pocket"])
        peg = world.object_pose("peg")
        axis = z_axis(peg[3:])
        tip = peg[:3] + start.info["length_m"] * axis
        local = compose(inverse(pocket), pose(tip))[:3]
        inside = max(abs(local[0]), abs(local[1])) <= t["pocket_half"]
        depth = t["fixture_top"] - tip[2]
        tilt = axis_angle_between(np.array([1.0, 0.0, 0.0, 0.0]), peg[3:])  # vs. tip straight down
        released = not (world.touching("peg", "left_finger") or world.touching("peg", "right_finger"))
        success = inside and depth >= SUCCESS_DEPTH and tilt <= SUCCESS_TILT and released
        lateral = float(np.hypot(local[0], local[1]))
        progress = (
            1.0
            if success
            else 0.4 * (1 - min(1.0, tilt / (np.pi / 2)))
            + 0.3 * (1 - min(1.0, lateral / 0.2))
            + 0.3 * float(np.clip(depth / SUCCESS_DEPTH, 0.0, 1.0)) * float(inside)
        )
        metrics = {"tip_depth": float(depth), "tilt": float(tilt), "lateral": lateral, "released": float(released)}
        return Evaluation(success, min(progress, 0.99) if not success else 1.0, False, metrics)
