"""Run episodes: one function used by collection, evaluation and video playback.

A controller is a `sim.contracts.Controller`: `reset(env)` and `act(env) -> (7,) action` (scripted
experts, policy runners). A controller may also have `command(env, action) -> (target (7,), close)`: the
absolute TCP target to track instead of the delta action (a safety filter in the command path,
`policies.runtime.perceived.RobotLoopRunner`), stepped with `env.step_pose`. A controller that raises
`sim.exceptions.EpisodeAborted` ends the episode as a failure with that reason (`info["aborted"]`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from sim.exceptions import EpisodeAborted, SimError


class EpisodeResult(NamedTuple):
    """Outcome of one episode.

    Attributes:
        success: the task's success check held at the end.
        steps: actions taken.
        info: the final `info` dict of the environment (metrics, episode facts).
        data: recorded arrays (T steps) or None when not recording.
        frames: rendered RGB frames (for videos) or None.
    """

    success: bool
    steps: int
    info: dict
    data: dict | None
    frames: list | None


def run_episode(env, controller, seed: int, record: bool = False, render_camera=None) -> EpisodeResult:
    """Reset `env` with `seed`, act with `controller` until termination or the step limit.

    The recorded "action" is what the controller returned, or its `label` where it has one (a
    sim.experts.DartExpert executes a noisy action and labels the step with the expert's own),
    as the action space executes it: each delta component clipped to the action limits
    (`sim.limits`; a scripted expert may ask for more, e.g. the whole rotation to its goal, and
    the arm moves the limit), the gripper as given. A policy learns the commands the arm ran.

    Args:
        env: an FmbEnv.
        controller: a sim.contracts.Controller (reset(env), act(env)).
        seed: episode seed (the same seed gives the same episode).
        record: keep observations ("obs/<key>"), actions, rewards and progress, each (T, ...), and
            in a chain "stage", the index of the stage each step belongs to, and "planned",
            whether its action was a planned move of the chain's, not a skill's
            (`sim.experts.chain.ChainController.planning`).
        render_camera: CameraSpec to render a frame of after every step (for videos), or None.
    """
    obs, info = env.reset(seed=seed)
    rows: dict[str, list] = {}
    frames = [] if render_camera is not None else None
    command = getattr(controller, "command", None)
    try:
        controller.reset(env)
    except EpisodeAborted as e:
        info = {**info, "success": False, "failed": True, "aborted": str(e)}
        return EpisodeResult(False, env.steps, info, None, frames)
    if frames is not None:
        frames.append(env.backend.render(render_camera)[0])
    terminated = truncated = False
    while not (terminated or truncated):
        stage = env.episode.info.get("stage")  # a chain's running stage, that of this step's observation
        try:
            action = np.asarray(controller.act(env), dtype=np.float32)
        except EpisodeAborted as e:
            info = {**info, "success": False, "failed": True, "aborted": str(e)}
            break
        try:
            if command is None:
                next_obs, reward, terminated, truncated, next_info = env.step(action)
            else:
                next_obs, reward, terminated, truncated, next_info = env.step_pose(*command(env, action))
        except SimError as e:  # the physics blew up: the episode ends as a failure, marked so
            info = {**info, "success": False, "failed": True, "unstable": str(e)}
            break
        if record:
            for key, value in obs.items():
                rows.setdefault(f"obs/{key}", []).append(value)
            label = getattr(controller, "label", None)  # DART: the expert's action, not the noisy one
            rows.setdefault("action", []).append(executable(env, action if label is None else label))
            if stage is not None:
                rows.setdefault("stage", []).append(np.int16(stage))
            planning = getattr(controller, "planning", None)
            if planning is not None:
                rows.setdefault("planned", []).append(bool(planning))
        obs, info = next_obs, next_info
        if record:
            rows.setdefault("reward", []).append(np.float32(reward))
            rows.setdefault("progress", []).append(np.float32(info["progress"]))
        if frames is not None:
            frames.append(env.backend.render(render_camera)[0])
    data = {k: np.stack(v) for k, v in rows.items()} if record and rows else None
    return EpisodeResult(bool(info["success"]), env.steps, info, data, frames)


def executable(env, action) -> np.ndarray:
    """(7,) float32: `action` with its delta clipped per component as `env`'s action space executes
    it (`sim.controller.ActionSpec.parse`), the gripper value as given; an action the arm refuses
    (NaN: a safety filter held the arm instead) as it was."""
    a = np.asarray(action, dtype=np.float32)
    if a.shape != (7,) or not np.all(np.isfinite(a)):
        return a
    return np.append(env.config.actions.parse(a).delta, a[6]).astype(np.float32)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate (low, high)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
