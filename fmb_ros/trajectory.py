"""Joint trajectories as ros2_control's JointTrajectoryController takes them, sampled in time.

A trajectory is K waypoints of arm joint positions [rad] with times from its start [s]. Sampling
before the first waypoint interpolates from the joint positions when it was received; after the
last one it holds the last waypoint. Linear interpolation between waypoints (the controller's
default without velocities).
"""

from __future__ import annotations

import numpy as np

from fmb_ros.exceptions import ConversionError


class JointTrajectoryPlan:
    """See module docstring.

    Args:
        start_time: time the trajectory starts [s] (its header stamp, or the receive time when 0).
        times: (K,) increasing times from the start [s], the first >= 0.
        positions: (K, J) joint positions [rad].
        current: (J,) joint positions at receipt [rad] (the segment before the first waypoint).
    """

    def __init__(self, start_time: float, times, positions, current):
        times = np.asarray(times, float).reshape(-1)
        positions = np.asarray(positions, float)
        current = np.asarray(current, float).reshape(-1)
        if len(times) == 0:
            raise ConversionError("joint trajectory has no points")
        if positions.shape != (len(times), len(current)):
            raise ConversionError(
                f"joint trajectory positions must be ({len(times)}, {len(current)}), got {positions.shape}"
            )
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(positions))):
            raise ConversionError("joint trajectory has NaN/inf")
        if times[0] < 0 or np.any(np.diff(times) <= 0):
            raise ConversionError(f"joint trajectory times must increase from >= 0 s, got {times.tolist()}")
        self.start_time = float(start_time)
        self.times = np.concatenate([[0.0], times]) if times[0] > 0 else times
        self.positions = np.vstack([current, positions]) if times[0] > 0 else positions

    @property
    def end_time(self) -> float:
        return self.start_time + float(self.times[-1])

    def sample(self, t: float) -> np.ndarray:
        """(J,) joint positions [rad] at time `t` [s]."""
        s = float(t) - self.start_time
        return np.array([np.interp(s, self.times, self.positions[:, j]) for j in range(self.positions.shape[1])])


def plan_from_msg(msg, arm_joints, current, now: float) -> JointTrajectoryPlan:
    """A plan from a trajectory_msgs/JointTrajectory naming every joint of `arm_joints` (any order)."""
    index = {n: i for i, n in enumerate(msg.joint_names)}
    missing = [n for n in arm_joints if n not in index]
    if missing:
        raise ConversionError(f"joint trajectory lacks joints {missing}; it names {list(msg.joint_names)}")
    cols = [index[n] for n in arm_joints]
    for k, p in enumerate(msg.points):
        if len(p.positions) != len(msg.joint_names):
            raise ConversionError(
                f"joint trajectory point {k} has {len(p.positions)} positions for {len(msg.joint_names)} joints"
            )
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    positions = [[p.positions[c] for c in cols] for p in msg.points]
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    return JointTrajectoryPlan(stamp if stamp > 0 else now, times, np.reshape(positions, (-1, len(cols))), current)
