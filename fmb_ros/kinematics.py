"""Panda kinematics for a skill node: forward and inverse, from the same robot model as the simulator.

A skill node has no simulator, but scripted experts plan with inverse kinematics (the
place_on_fixture expert checks its approach path with it) and the joint-trajectory output turns
each safe TCP target into arm joints. This builds the MuJoCo model of the arm alone (no objects,
no cameras) and answers `forward(q)` and `inverse(pose, ...)`. Two inverse solvers, chosen by name
(`make_kinematics`, the skill server's `ik_solver` parameter):

- `dls`: damped least squares on the model (`sim.ik.solve_ik`, as `sim.env.FmbEnv` resets the arm);
- `mink`: differential inverse kinematics with the maintained library mink on the same MuJoCo model
  (a TCP frame task, a posture task towards the rest posture, joint-limit constraints solved as a
  QP with daqp at every iteration), so joint limits are constraints rather than a final check.

On a real robot it is the same Panda model.
"""

from __future__ import annotations

import numpy as np

from fmb_core.errors import check_choice
from fmb_ros.exceptions import RosError


class PandaKinematics:
    """Forward and inverse (damped least squares) kinematics of the Panda's TCP in the base frame."""

    name = "dls"

    def __init__(self):
        from sim import panda
        from sim.backend import make_backend
        from sim.scene import PhysicsConfig, SceneSpec

        self._backend = make_backend("mujoco")
        self._backend.load(SceneSpec([], cameras=(), physics=PhysicsConfig()))
        self.lower, self.upper = panda.arm_joint_limits()

    def forward(self, q) -> tuple[np.ndarray, np.ndarray]:
        """TCP pose (7,) [m, xyzw] and Jacobian (6, 7) at arm joints `q` (7,) [rad]."""
        return self._backend.forward_kinematics(np.asarray(q, float))

    def inverse(self, tcp_pose, seed, q_rest=None, margin: float = 0.1) -> np.ndarray | None:
        """Arm joints [rad] reaching `tcp_pose` (7,) from `seed` (7,), or None when out of reach or
        within `margin` [rad] of a joint limit."""
        from sim.exceptions import SimError
        from sim.ik import solve_ik

        try:
            return solve_ik(
                self.forward,
                np.asarray(tcp_pose, float),
                np.asarray(seed, float),
                self.lower + margin,
                self.upper - margin,
                q_rest=None if q_rest is None else np.asarray(q_rest, float),
            )
        except SimError:
            return None

    def close(self) -> None:
        self._backend.close()


class MinkKinematics(PandaKinematics):
    """Inverse kinematics with mink (see module docstring); forward kinematics as the base class.

    Args:
        tolerance: position [m] / rotation [rad] error accepted.
        iterations: QP steps before giving up.
        posture_cost: weight of the rest-posture task relative to the TCP task (1 m, 1 rad).
        dt: integration step of each QP's joint velocities [s].
    """

    name = "mink"

    def __init__(self, tolerance: float = 2e-4, iterations: int = 200, posture_cost: float = 1e-3, dt: float = 0.05):
        try:
            import mink
        except ImportError as e:
            raise RosError(
                f"ik_solver mink needs the mink package ({e}); install it with `pip install -e .[ik]`"
            ) from None
        super().__init__()
        self._mink = mink
        model = self._backend.model
        self._arm_qpos = self._backend._arm_qpos
        self.configuration = mink.Configuration(model)
        self.tcp_task = mink.FrameTask("tcp", "site", position_cost=1.0, orientation_cost=1.0, lm_damping=1e-3)
        self.posture_task = mink.PostureTask(model, cost=posture_cost)
        self.tolerance, self.iterations, self.dt = tolerance, iterations, dt
        self._limits: dict[float, object] = {}

    def _limit(self, margin: float):
        """mink's joint-limit constraint with the arm's ranges narrowed by `margin` [rad] (the fingers'
        4 cm range is left as it is), cached per margin."""
        import copy

        from sim.panda import ARM_JOINTS

        if margin not in self._limits:
            model = copy.deepcopy(self.configuration.model)
            for name, low, high in zip(ARM_JOINTS, self.lower, self.upper):
                model.joint(name).range[:] = (low + margin, high - margin)
            self._limits[margin] = self._mink.ConfigurationLimit(model)
        return self._limits[margin]

    def inverse(self, tcp_pose, seed, q_rest=None, margin: float = 0.1) -> np.ndarray | None:
        """Arm joints [rad] reaching `tcp_pose` (7,) from `seed` (7,) while staying `margin` [rad]
        inside the joint limits (a constraint of every QP step), or None when not reached."""
        mink = self._mink
        pose = np.asarray(tcp_pose, float)
        if pose.shape != (7,) or not np.all(np.isfinite(pose)):
            return None
        seed = np.clip(np.asarray(seed, float), self.lower + margin, self.upper - margin)
        q = self.configuration.q.copy()
        q[self._arm_qpos] = seed
        self.configuration.update(q)
        rest = q.copy()
        rest[self._arm_qpos] = seed if q_rest is None else np.asarray(q_rest, float)
        self.posture_task.set_target(rest)
        xyzw = pose[3:] / np.linalg.norm(pose[3:])
        target = mink.SE3.from_rotation_and_translation(
            mink.SO3(np.array([xyzw[3], *xyzw[:3]])), pose[:3]
        )  # mink uses wxyz
        self.tcp_task.set_target(target)
        limits = [self._limit(margin)]
        for _ in range(self.iterations):
            error = self.tcp_task.compute_error(self.configuration)  # (6,) twist error [m, rad]
            if np.linalg.norm(error[:3]) <= self.tolerance and np.linalg.norm(error[3:]) <= self.tolerance:
                q = self.configuration.q[self._arm_qpos].copy()
                return (
                    q if np.all(q >= self.lower + margin - 1e-6) and np.all(q <= self.upper - margin + 1e-6) else None
                )
            try:
                velocity = mink.solve_ik(
                    self.configuration, [self.tcp_task, self.posture_task], self.dt, "daqp", limits=limits
                )
            except mink.NoSolutionFound:
                return None
            self.configuration.integrate_inplace(velocity, self.dt)
        return None


IK_SOLVERS: dict[str, type[PandaKinematics]] = {"dls": PandaKinematics, "mink": MinkKinematics}


def make_kinematics(ik_solver: str = "dls") -> PandaKinematics:
    """The Panda kinematics with the inverse solver called `ik_solver` (dls, mink)."""
    check_choice("ik_solver", ik_solver, IK_SOLVERS)
    return IK_SOLVERS[ik_solver]()
