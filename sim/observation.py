"""The observation schema: every key an observation dict holds, with its shape, dtype, unit and
frame. One definition for the simulator (`sim.env.FmbEnv`), the ROS mirror of a robot
(`fmb_ros.world.WorldMirror`), the episode store ("obs/<key>", `store_key`, `sim.store`), the
LeRobot mapping (`sim.lerobot`) and the policies' windows and features (`policies.common`);
`check` says where an observation departs from it.

    obs = proprioception(tcp_pose, tcp_twist, wrench, q, dq, gripper_width)   # the robot's own state
    obs[rgb_key("side_1")], obs[depth_key("side_1")] = rgb, depth                # per camera
    problems = check(obs)                                                        # [] when it conforms
"""

from __future__ import annotations

import dataclasses

import numpy as np

TCP_POSE = "tcp_pose"
TCP_VEL = "tcp_vel"
WRENCH = "wrench"
Q = "q"
DQ = "dq"
GRIPPER = "gripper"
POINTS = "points"
RGB_PREFIX = "rgb/"
DEPTH_PREFIX = "depth/"
STATE = "state"
"""A flat state vector of foreign data (a LeRobot import from another robot), in place of the parts."""
STORE_PREFIX = "obs/"
"""Episode stores (`sim.store`) keep observation entry `key` as "obs/<key>" (`store_key`)."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One observation entry. `shape` uses None for a size the configuration sets (image sides,
    cloud points)."""

    key: str
    shape: tuple
    dtype: type
    unit: str
    frame: str
    description: str
    low: float = -np.inf
    high: float = np.inf


PROPRIOCEPTION = (
    Entry(TCP_POSE, (7,), np.float32, "m, quaternion xyzw", "robot base", "measured TCP pose"),
    Entry(TCP_VEL, (6,), np.float32, "m/s, rad/s", "robot base", "TCP twist: linear then angular"),
    Entry(WRENCH, (6,), np.float32, "N, N m", "TCP", "external force then torque on the hand, about the TCP"),
    Entry(Q, (7,), np.float32, "rad", "joints", "arm joint positions"),
    Entry(DQ, (7,), np.float32, "rad/s", "joints", "arm joint velocities"),
    Entry(GRIPPER, (1,), np.float32, "m", "-", "finger opening", 0.0, 0.1),
)
"""What every observation holds: the robot's own state."""

POINT_CLOUD = Entry(POINTS, (None, 6), np.float32, "m; rgb in [0, 1]", "robot base", "fused cloud: xyz, rgb")


def rgb_entry(camera: str) -> Entry:
    return Entry(rgb_key(camera), (None, None, 3), np.uint8, "0-255", "image", f"colour image of {camera}", 0, 255)


def depth_entry(camera: str) -> Entry:
    return Entry(
        depth_key(camera), (None, None), np.float32, "m", "image", f"depth along the optical axis, {camera}", 0
    )


def store_key(key: str) -> str:
    """The episode store's name of observation entry `key` ("tcp_pose" -> "obs/tcp_pose")."""
    return STORE_PREFIX + key


def rgb_key(camera: str) -> str:
    return RGB_PREFIX + camera


def depth_key(camera: str) -> str:
    return DEPTH_PREFIX + camera


def proprioception(tcp_pose, tcp_vel, wrench, q, dq, gripper_width: float) -> dict[str, np.ndarray]:
    """The PROPRIOCEPTION part of an observation, in the schema's shapes and dtypes."""
    values = (tcp_pose, tcp_vel, wrench, q, dq, [gripper_width])
    return {e.key: np.asarray(v, dtype=e.dtype).reshape(e.shape) for e, v in zip(PROPRIOCEPTION, values)}


def entries(obs: dict) -> list[Entry]:
    """The schema entries for the keys of `obs` (unknown keys are left out; `check` names them)."""
    found = [e for e in PROPRIOCEPTION if e.key in obs]
    if POINTS in obs:
        found.append(POINT_CLOUD)
    for key in obs:
        if key.startswith(RGB_PREFIX):
            found.append(rgb_entry(key.removeprefix(RGB_PREFIX)))
        elif key.startswith(DEPTH_PREFIX):
            found.append(depth_entry(key.removeprefix(DEPTH_PREFIX)))
    return found


def check(obs: dict, extra: tuple[str, ...] = ()) -> list[str]:
    """What in `obs` departs from the schema (a missing robot-state entry, an unknown key, a wrong
    shape or dtype); [] when it conforms. `extra`: keys a caller adds (a policy's goal pose)."""
    problems = [f"missing {e.key!r}" for e in PROPRIOCEPTION if e.key not in obs]
    known = {e.key for e in entries(obs)} | set(extra)
    problems += [f"unknown key {k!r}" for k in obs if k not in known]
    for e in entries(obs):
        value = np.asarray(obs[e.key])
        fits = len(value.shape) == len(e.shape) and all(s is None or s == v for s, v in zip(e.shape, value.shape))
        if not fits:
            problems.append(f"{e.key!r}: shape {value.shape}, expected {e.shape}")
        if value.dtype != e.dtype:
            problems.append(f"{e.key!r}: dtype {value.dtype}, expected {np.dtype(e.dtype)}")
    return problems
