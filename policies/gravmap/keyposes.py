"""Sub-goal keypose discovery on demonstrations (after GravMAD and the keyframe heuristic of
PerAct / 3D Diffuser Actor). Numpy only: no torch.

A keypose is a step of a demonstration where one phase of the skill ends. Four cues, each a
list of step indices, merged into one sorted list::

    gripper   the gripper command (action[6], 1 = close) or, without actions, the measured
              opening crossing half of its range changes between t-1 and t   -> keypose t
    still     the TCP speed stays below `still_speed` for at least `still_steps` steps (a run
              that begins at step 0, the start pose, is no sub-goal)     -> the run's last step
    contact   the force magnitude |f| crosses `contact_force` (either way), or jumps by more
              than `force_jump` between two steps                                -> keypose t
    end       the last step of the episode (where the skill's last phase ends)

Cues closer than `merge_steps` are one keypose; the merged keypose is the step of its most
telling cue (gripper > end > contact > still; the later step on a tie).

On the scripted experts (tests/policies/test_gravmap.py): grasp gives pre-grasp (still),
close (gripper) and lifted (end); insert gives hover-aligned above the hole (still) and the
inserted pose (end, with the slow entry merged into it).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from fmb_core.errors import ParameterError, check_range

CUE_PRIORITY = {"gripper": 3, "end": 2, "contact": 1, "still": 0}
"""Which cue names a merged keypose (higher wins)."""


@dataclasses.dataclass(frozen=True)
class KeyposeConfig:
    """Thresholds of keypose discovery.

    Attributes:
        still_speed: TCP linear speed below which the arm counts as still [m/s] (0.05 m/s is
            5 mm per 10 Hz step; the experts slow to 2-4 cm/s where they switch phase).
        still_steps: steps the speed must stay below `still_speed` [steps].
        contact_force: force magnitude whose crossing marks a contact change [N].
        force_jump: change of force magnitude between two steps that marks a contact change
            while in contact [N].
        merge_steps: cues at most this many steps apart are one keypose [steps].
    """

    still_speed: float = 0.05
    still_steps: int = 2
    contact_force: float = 0.3
    force_jump: float = 2.0
    merge_steps: int = 2

    def __post_init__(self):
        check_range("still_speed", self.still_speed, 0.0, 10.0, "m/s")
        check_range("still_steps", self.still_steps, 1, 1000)
        check_range("contact_force", self.contact_force, 0.0, 1000.0, "N")
        check_range("force_jump", self.force_jump, 0.0, 1000.0, "N")
        check_range("merge_steps", self.merge_steps, 0, 1000)


class Keypose(NamedTuple):
    """One discovered sub-goal.

    Attributes:
        step: index into the episode.
        position: (3,) TCP position [m], base frame.
        openness: gripper openness at the keypose in [0, 1] (1 = open, 0 = closed).
        cue: the cue that named it (gripper, end, contact, still).
    """

    step: int
    position: np.ndarray
    openness: float
    cue: str


def gripper_openness(action: np.ndarray | None, gripper: np.ndarray | None, length: int) -> np.ndarray:
    """(T,) openness in [0, 1] (1 = open): 1 - the gripper command action[:, 6] when actions are
    given, else the measured opening (T, 1) [m] scaled by its range (open when no range)."""
    if action is not None:
        return 1.0 - (np.asarray(action)[:, 6] >= 0.5).astype(float)
    if gripper is not None:
        g = np.asarray(gripper, float).reshape(length, -1)[:, 0]
        span = g.max() - g.min()
        return (g - g.min()) / span if span > 1e-4 else np.ones(length)
    return np.ones(length)


def _still_cues(speed: np.ndarray, config: KeyposeConfig) -> list[int]:
    out, start = [], None
    below = speed < config.still_speed
    for t, b in enumerate([*below, False]):
        if b and start is None:
            start = t
        elif not b and start is not None:
            if t - start >= config.still_steps and start > 0:
                out.append(t - 1)
            start = None
    return out


def discover_keyposes(
    tcp_pose: np.ndarray,
    action: np.ndarray | None = None,
    tcp_vel: np.ndarray | None = None,
    wrench: np.ndarray | None = None,
    gripper: np.ndarray | None = None,
    config: KeyposeConfig = KeyposeConfig(),
) -> list[Keypose]:
    """Keyposes of one demonstration, in step order (the last one is always the final step).

    Args:
        tcp_pose: (T, 7) TCP pose, position [m] + quaternion xyzw, base frame.
        action: (T, 7) actions (the gripper command is action[:, 6], 1 = close), or None.
        tcp_vel: (T, 6) TCP twist [m/s, rad/s]; None = finite differences of the positions at 10 Hz.
        wrench: (T, 6) force [N] + torque [N m], or None (no contact cue).
        gripper: (T, 1) finger opening [m], used for the gripper cue without actions.
        config: thresholds.
    """
    tcp_pose = np.asarray(tcp_pose, float)
    if tcp_pose.ndim != 2 or tcp_pose.shape[1] != 7 or len(tcp_pose) == 0:
        raise ParameterError(f"tcp_pose must be (T, 7) with T >= 1, got shape {tcp_pose.shape}")
    n = len(tcp_pose)
    for name, arr in (("action", action), ("tcp_vel", tcp_vel), ("wrench", wrench), ("gripper", gripper)):
        if arr is not None and len(arr) != n:
            raise ParameterError(f"{name} has {len(arr)} steps, tcp_pose has {n}")
    openness = gripper_openness(action, gripper, n)
    cues: list[tuple[int, str]] = [(n - 1, "end")]
    cues += [(int(t), "gripper") for t in np.flatnonzero(np.diff(openness > 0.5)) + 1]
    if tcp_vel is not None:
        speed = np.linalg.norm(np.asarray(tcp_vel, float)[:, :3], axis=1)
    else:
        speed = np.r_[0.0, np.linalg.norm(np.diff(tcp_pose[:, :3], axis=0), axis=1) * 10.0]
    cues += [(t, "still") for t in _still_cues(speed, config)]
    if wrench is not None:
        force = np.linalg.norm(np.asarray(wrench, float)[:, :3], axis=1)
        above = force >= config.contact_force
        crossing = np.flatnonzero(above[1:] != above[:-1]) + 1
        jump = np.flatnonzero(np.abs(np.diff(force)) > config.force_jump) + 1
        cues += [(int(t), "contact") for t in sorted(set(crossing) | set(jump))]
    cues.sort()
    groups: list[list[tuple[int, str]]] = []
    for cue in cues:
        if groups and cue[0] - groups[-1][-1][0] <= config.merge_steps:
            groups[-1].append(cue)
        else:
            groups.append([cue])
    out = []
    for group in groups:
        t, cue = max(group, key=lambda c: (CUE_PRIORITY[c[1]], c[0]))
        if any(c[1] == "end" for c in group):
            t = n - 1  # the final step always stays a keypose
        out.append(Keypose(t, tcp_pose[t, :3].copy(), float(openness[t]), cue))
    return out


def next_keypose_index(keyposes: list[Keypose], length: int) -> np.ndarray:
    """(T,) for every step t the index into `keyposes` of the first keypose after t (the last
    keypose for steps at or after it): the sub-goal a training window at step t aims at."""
    steps = np.array([k.step for k in keyposes])
    idx = np.searchsorted(steps, np.arange(length), side="right")
    return np.minimum(idx, len(keyposes) - 1)


def episode_subgoals(keyposes: list[Keypose], length: int) -> np.ndarray:
    """(T, 4) per step: the next keypose's TCP position [m] (base frame) and its openness."""
    table = np.array([[*k.position, k.openness] for k in keyposes], float)
    return table[next_keypose_index(keyposes, length)]
