"""`FmbEnv`: one Gymnasium environment over any backend and any task.

    env = make_env("insert", backend="mujoco", seed=0)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)   # action: (7,), see sim.controller

Each `step` holds one 10 Hz action: the target pose is the measured TCP pose moved by the
delta clipped per component, then clipped into the workspace box (`sim.limits`: FMB's robot's rule,
the one the ROS safety filter applies too), and the Cartesian impedance controller tracks it for
`substeps` physics steps. `step_pose` takes an absolute target pose instead (for the ROS layer and
for experts): it is clipped into the box only.

Observation (dict): "tcp_pose" (7,), "tcp_vel" (6,), "wrench" (6,) [N, N m, TCP frame], "q" (7,),
"dq" (7,), "gripper" (1,) [m]; with cameras, "rgb/<cam>" (H, W, 3) uint8 and "depth/<cam>"
(H, W) float32 [m]; with `point_cloud=N`, "points" (N, 6) float32 (xyz [m] base frame, rgb 0-1).
Privileged object poses are in `info["object_poses"]`, never in the observation.
Reward: 1.0 on the step the task succeeds, else 0.0; `info["progress"]` is the dense measure.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import NamedTuple

import gymnasium as gym
import numpy as np

from cad.fmb_reference import COLOURS
from fmb_core.errors import check_choice, check_range
from sim import observation, panda
from sim.backend import Backend, make_backend
from sim.controller import ActionSpec, CartesianImpedance, ImpedanceGains
from sim.exceptions import ActionError, SimError, UnknownNameError
from sim.ik import solve_ik
from sim.limits import DEFAULT_WORKSPACE, Workspace
from sim.objects import ObjectPool
from sim.perception.hand_eye import HandEyeConfig, refine_views, table_centre
from sim.pointcloud import fuse_point_cloud
from sim.randomization import PLACEMENTS, ObjectProperties, Randomization
from sim.scene import DEFAULT_CAMERAS, CameraSpec, PhysicsConfig, SceneSpec
from sim.sensor import SensorModel
from sim.spatial import apply_delta
from sim.tasks import TASKS
from sim.tasks.base import EpisodeStart, Evaluation, Task

SETTLE_TIME = 0.3
"""Seconds simulated after a reset so that grasps and contacts settle [s]."""


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Environment options.

    Attributes:
        cameras: names of cameras to render into the observation (subset of side_1, side_2, wrist).
        image_size: (width, height) of every rendered image [px].
        point_cloud: points in the fused cloud (0 = none); needs cameras.
        physics: timestep, control rate, friction.
        randomize: draw object colours, friction and mass per episode (see sim.randomization).
        randomization: the ranges of those draws.
        gains: impedance controller gains.
        actions: action limits (per-component delta clip).
        workspace: the TCP box targets are clipped into [m], base frame (also the point cloud's crop).
        placement: where boards are put, a name of sim.randomization.PLACEMENTS ("train" = the
            demonstrations' box, "novel" = outside it).
        sensor: the depth cameras' errors (`sim.sensor`; default exact): applied to the depth
            images and so to the point cloud, with a per-episode calibration error of each camera.
        hand_eye: the point cloud's fusion refines each camera's calibration on the robot's hand
            first, as the robot's perception does (`sim.perception.hand_eye`; default off: the
            cameras as calibrated). The images are the cameras' own either way.
        max_steps: steps after which an episode is truncated (0 = the task's limit, e.g. insert 100).
    """

    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (128, 128)
    point_cloud: int = 0
    physics: PhysicsConfig = PhysicsConfig()
    randomize: bool = True
    randomization: Randomization = Randomization()
    gains: ImpedanceGains = ImpedanceGains()
    actions: ActionSpec = ActionSpec()
    workspace: Workspace = DEFAULT_WORKSPACE
    placement: str = "train"
    sensor: SensorModel = SensorModel()
    hand_eye: HandEyeConfig = HandEyeConfig(enabled=False)
    max_steps: int = 0

    def __post_init__(self):
        check_range("max_steps", self.max_steps, 0, 1_000_000)
        known = [c.name for c in DEFAULT_CAMERAS]
        for cam in self.cameras:
            if cam not in known:
                raise UnknownNameError(f"unknown camera {cam!r}; known: {', '.join(known)}")
        check_range("point_cloud", self.point_cloud, 0, 100_000)
        check_choice("placement", self.placement, PLACEMENTS)
        if self.point_cloud and not self.cameras:
            raise UnknownNameError("point_cloud needs at least one camera (cameras=...)")

    def camera_specs(self) -> tuple[CameraSpec, ...]:
        w, h = self.image_size
        return tuple(c.resized(w, h) for c in DEFAULT_CAMERAS)


class EnvSnapshot(NamedTuple):
    """An environment state to return to (see `FmbEnv.snapshot`); opaque to callers."""

    physics: object
    target: np.ndarray
    gripper_width: float
    steps: int
    rng_state: dict
    observation: dict | None
    start: EpisodeStart
    sensor_rng_state: dict | None = None


class FmbEnv(gym.Env):
    """See module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, task: Task, backend: Backend, config: EnvConfig = EnvConfig(), seed: int | None = None):
        self.task = task
        self.backend = backend
        self.config = config
        self.controller = CartesianImpedance(config.gains, panda.TORQUE_LIMITS)
        self.action_space = gym.spaces.Box(config.actions.low(), config.actions.high(), dtype=np.float64)
        self.observation_space = self._observation_space()
        self._rng = np.random.default_rng(seed)
        self._start: EpisodeStart | None = None
        self._target = None
        self._gripper_width = panda.GRIPPER_OPEN
        self.steps = 0
        self._sensor_rng: np.random.Generator | None = None
        self._calibration: dict[str, np.ndarray] = {}
        self.last_observation: dict | None = None
        """The observation the last reset()/step() returned (what a policy runner acts on)."""
        self.fused_camera_poses: dict[str, np.ndarray] = {}
        """Each camera's pose (7,) [m, xyzw, base frame] the last observation's "points" were fused
        with (refined on the hand with `config.hand_eye`, else as calibrated); {} without a cloud."""

    # -- gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        start = self.task.start(self._rng)
        scene = SceneSpec(start.objects, self.config.camera_specs(), self.config.physics)
        self.backend.load(scene)
        lower, upper = panda.arm_joint_limits()
        q = solve_ik(self.backend.forward_kinematics, start.tcp_pose, panda.HOME_Q, lower, upper)
        # Object properties first: the reset's forward pass must already see the new masses.
        keys = [o.key for o in start.objects]
        if self.config.randomize:
            self._properties = self.config.randomization.draw(self._rng, keys)
        else:
            self._properties = {
                o.key: ObjectProperties(
                    o.part.colour,
                    tuple(c / 255.0 for c in COLOURS[o.part.colour]) + (1.0,),
                    self.config.physics.friction,
                    1.0,
                )
                for o in start.objects
            }
        for key, props in self._properties.items():
            self.backend.set_object_properties(key, props.rgba, props.friction, props.mass_scale)
        self.backend.reset(q, start.gripper_width, start.object_poses)
        self._start = start
        self._q_rest = q
        self._target = start.tcp_pose.copy()
        self._gripper_width = 0.0 if start.gripper_closed else panda.GRIPPER_OPEN
        for _ in range(int(round(SETTLE_TIME / self.config.physics.timestep))):
            self._physics_step()
        for target, close in start.warmup:
            self._target = np.asarray(target, float)
            self._gripper_width = 0.0 if close else panda.GRIPPER_OPEN
            for _ in range(self.config.physics.substeps):
                self._physics_step()
        self.steps = 0
        self._sensor_rng, self._calibration = None, {}
        if not self.config.sensor.exact:  # its own generator: exact runs draw as before
            self._sensor_rng = np.random.default_rng(self._rng.integers(2**63))
            # every camera's: perception may look through cameras the observation does not hold
            self._calibration = self.config.sensor.episode(self._sensor_rng, self.config.camera_specs())
        evaluation = self.task.evaluate(self, start)
        self.last_observation = self._observation()
        return self.last_observation, self._info(evaluation)

    def step(self, action):
        parsed = self.config.actions.parse(action)
        state = self.backend.robot_state()
        target = apply_delta(state.tcp_pose, parsed.delta)
        return self.step_pose(target, parsed.close_gripper)

    def step_pose(self, target_pose, close_gripper: bool):
        """Track an absolute TCP target (7,) (clipped into the workspace) for one control period."""
        if self._start is None:
            raise ActionError("call reset() before step()")
        target = np.asarray(target_pose, dtype=float)
        if target.shape != (7,) or not np.all(np.isfinite(target)):
            raise ActionError(f"target pose must be 7 finite numbers, got {target!r}")
        target = target.copy()
        target[:3] = self.config.workspace.clip(target[:3])
        target[3:] /= np.linalg.norm(target[3:])
        self._target = target
        self._gripper_width = 0.0 if close_gripper else panda.GRIPPER_OPEN
        for _ in range(self.config.physics.substeps):
            self._physics_step()
        self.steps += 1
        evaluation = self.task.evaluate(self, self._start)
        terminated = evaluation.success or evaluation.failed
        truncated = self.steps >= self.max_steps and not terminated
        reward = 1.0 if evaluation.success else 0.0
        self.last_observation = self._observation()
        return self.last_observation, reward, terminated, truncated, self._info(evaluation)

    @property
    def max_steps(self) -> int:
        """Steps after which an episode is truncated: the config's limit, else the task's."""
        return self.config.max_steps or self.task.max_steps

    def render(self):
        cam = self.config.camera_specs()[0]
        return self.backend.render(cam)[0]

    def close(self):
        self.backend.close()

    # -- WorldView for tasks and experts ---------------------------------------------------------
    def object_pose(self, key: str) -> np.ndarray:
        return self.backend.object_pose(key)

    def tcp_pose(self) -> np.ndarray:
        return self.backend.robot_state().tcp_pose

    def gripper_width(self) -> float:
        return self.backend.robot_state().gripper_width

    def touching(self, key_a: str, key_b: str) -> bool:
        return self.backend.touching(key_a, key_b)

    def joint_positions(self) -> np.ndarray:
        """Current arm joint positions [rad] (7,), for experts planning in joint space."""
        return self.backend.robot_state().q

    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) arm joint limits [rad], each (7,)."""
        return panda.arm_joint_limits()

    def inverse_kinematics(
        self, tcp_pose: np.ndarray, margin: float = 0.1, seed: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Arm joints [rad] reaching `tcp_pose` (7,) from `seed` (default: the current joints), or
        None when out of reach or within `margin` [rad] of a joint limit (for experts planning)."""
        lower, upper = panda.arm_joint_limits()
        try:
            q = solve_ik(
                self.backend.forward_kinematics,
                np.asarray(tcp_pose, float),
                self.backend.robot_state().q if seed is None else np.asarray(seed, float),
                lower + margin,
                upper - margin,
                q_rest=self._q_rest,
            )
        except SimError:
            return None
        return q

    def snapshot(self) -> EnvSnapshot:
        """Everything the next steps depend on: physics, controller target, gripper command, step
        count, the random generator (point-cloud draws) and the last observation. Restoring it
        (`restore`) makes the following steps repeat exactly (MuJoCo; PyBullet to ~1e-6)."""
        if self._start is None:
            raise ActionError("call reset() before snapshot()")
        return EnvSnapshot(
            self.backend.save_state(),
            self._target.copy(),
            float(self._gripper_width),
            int(self.steps),
            copy.deepcopy(self._rng.bit_generator.state),
            copy.deepcopy(self.last_observation),
            self._start,
            copy.deepcopy(self._sensor_rng.bit_generator.state) if self._sensor_rng is not None else None,
        )

    def restore(self, snap: EnvSnapshot) -> None:
        """Return to `snap` (taken by `snapshot()` in the current episode, i.e. since the last reset)."""
        if not isinstance(snap, EnvSnapshot) or snap.start is not self._start:
            raise ActionError("restore needs a snapshot taken by this environment since its last reset()")
        self.backend.restore_state(snap.physics)
        self._target = snap.target.copy()
        self._gripper_width = snap.gripper_width
        self.steps = snap.steps
        self._rng.bit_generator.state = copy.deepcopy(snap.rng_state)
        self.last_observation = copy.deepcopy(snap.observation)
        if snap.sensor_rng_state is not None:
            self._sensor_rng.bit_generator.state = copy.deepcopy(snap.sensor_rng_state)

    @property
    def episode(self) -> EpisodeStart:
        """What the current episode started from (task info, targets)."""
        return self._start

    def camera_views(
        self, names: tuple[str, ...], image_size: int | None = None, rng: np.random.Generator | None = None
    ) -> list[tuple[CameraSpec, np.ndarray, np.ndarray, np.ndarray]]:
        """[(spec, believed pose (7,) [m, xyzw], rgb (H, W, 3) uint8, depth (H, W) [m])] of the
        cameras `names` rendered now, as the robot has them: through the config's sensor model
        (noisy depth, 0 without a return, each camera where its episode's calibration believes it
        is). `image_size` [px] renders width = height at that size (default: the config's).
        The depth noise draws from `rng` (default: the env's sensor generator, as observations do):
        a caller outside the observation stream passes its own so that observations stay as
        they would be without it. Exact sensors draw nothing."""
        specs = {c.name: c for c in self.config.camera_specs()}
        views = []
        for name in names:
            if name not in specs:
                raise UnknownNameError(f"unknown camera {name!r}; known: {', '.join(specs)}")
            spec = specs[name] if image_size is None else specs[name].resized(image_size, image_size)
            rgb, depth = self.backend.render(spec)
            if self._sensor_rng is not None:  # what the camera measures
                depth = self.config.sensor.corrupt(depth, spec, self._sensor_rng if rng is None else rng)
            views.append((spec, self.calibrated_camera_pose(name), rgb, depth))
        return views

    def calibrated_camera_pose(self, name: str) -> np.ndarray:
        """(7,) pose [m, xyzw, OpenCV optical axes] the robot's calibration gives camera `name`
        this episode: its true pose through the sensor model's calibration error (the true pose
        with an exact sensor). What a lab's extrinsic calibration file holds; rendering-free."""
        specs = {c.name: c for c in self.config.camera_specs()}
        if name not in specs:
            raise UnknownNameError(f"unknown camera {name!r}; known: {', '.join(specs)}")
        camera_pose = self.backend.camera_pose(specs[name])
        if self._sensor_rng is None:
            return camera_pose
        return self.config.sensor.believed_pose(camera_pose, self._calibration[name])

    # -- internals -------------------------------------------------------------------------------
    def _physics_step(self) -> None:
        s = self.backend.robot_state()
        tau = self.controller.torques(s.tcp_pose, self._target, s.jacobian, s.q, s.dq, self._q_rest, s.bias)
        self.backend.step(tau, self._gripper_width)

    def _observation(self) -> dict:
        s = self.backend.robot_state()
        obs = observation.proprioception(s.tcp_pose, s.tcp_twist, self.backend.wrench(), s.q, s.dq, s.gripper_width)
        if self.config.cameras:
            views = self.camera_views(self.config.cameras)
            for spec, _, rgb, depth in views:
                obs[observation.rgb_key(spec.name)] = rgb
                obs[observation.depth_key(spec.name)] = depth
            if self.config.point_cloud:
                if self.config.hand_eye.enabled:
                    centre = table_centre(self.config.workspace)
                    views, _ = refine_views(views, s.tcp_pose, s.gripper_width, self.config.hand_eye, centre)
                self.fused_camera_poses = {spec.name: np.asarray(pose, float).copy() for spec, pose, *_ in views}
                obs[observation.POINTS] = fuse_point_cloud(
                    views, self.config.point_cloud, self.config.workspace.low, self.config.workspace.high, self._rng
                )
        return obs

    def _info(self, evaluation: Evaluation) -> dict:
        return {
            "success": evaluation.success,
            "progress": evaluation.progress,
            "failed": evaluation.failed,
            "metrics": evaluation.metrics,
            "object_poses": {o.key: self.backend.object_pose(o.key) for o in self._start.objects},
            "object_properties": {k: p._asdict() for k, p in self._properties.items()},
            "episode": self._start.info,
            "steps": self.steps,
        }

    def _observation_space(self) -> gym.spaces.Dict:
        w, h = self.config.image_size
        entries = [*observation.PROPRIOCEPTION]
        for name in self.config.cameras:
            entries += [observation.rgb_entry(name), observation.depth_entry(name)]
        if self.config.point_cloud:
            entries.append(observation.POINT_CLOUD)
        sizes = {observation.POINTS: (self.config.point_cloud,)}
        spaces = {}
        for e in entries:  # the schema's sizes left open are the configuration's
            shape = tuple(sizes.get(e.key, (h, w))[i] if s is None else s for i, s in enumerate(e.shape))
            spaces[e.key] = gym.spaces.Box(e.low, e.high, shape, e.dtype)
        return gym.spaces.Dict(spaces)


def make_env(
    task: str,
    backend: str = "mujoco",
    objects: ObjectPool | None = None,
    cameras: tuple[str, ...] = (),
    seed: int | None = None,
    **config,
) -> FmbEnv:
    """Build an environment for the task called `task` on the backend called `backend`."""
    if task not in TASKS:
        raise UnknownNameError(f"unknown task {task!r}; known: {', '.join(sorted(TASKS))}")
    env_config = EnvConfig(cameras=tuple(cameras), **config)
    return FmbEnv(TASKS[task](objects, env_config.placement), make_backend(backend), env_config, seed=seed)
