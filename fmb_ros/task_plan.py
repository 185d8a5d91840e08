"""Multi-stage tasks described in YAML (FMB's long-horizon and assembly tasks), checked on load.

    name: vertical_peg
    stages:
      - skill: grasp
        target: {object: peg}          # an object's pose (simulator ground truth or perception)
        retries: 1                     # extra attempts after a failure (default 0)
      - skill: rotate
        target: {object: board}
      - skill: insert
        target: [0.52, -0.26, 0.05]    # a position [m] in the base frame (orientation identity),
        timeout: 60.0                  # or 7 numbers: position + quaternion xyzw; wall/sim seconds
      - skill: regrasp
        target: {object: peg}
        retreat: true                  # first back the open hand out and up (default: skill in RETREATED)

Objects a target may name: TARGET_OBJECTS. `retreat`: before the stage's first attempt the
executor moves the open hand along `sim.experts.chain.retreat_path` and only then resolves the
stage's target (see `fmb_ros.task_executor`); its default is whether the chain's experts and
policies retreat before that skill (`sim.experts.chain.RETREATED`: regrasp).

Every error names the stage, the field, the value and what is allowed. `ground_truth_objects` names
the simulator's object poses as targets name them (the fixture's `pocket` included).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError, check_range

STAGE_KEYS = ("skill", "target", "retries", "timeout", "retreat")
TARGET_OBJECTS = ("board", "peg", "hole", "fixture", "pocket")
"""What `target: {object: ...}` may name: the scene's objects (board, peg, the reorientation fixture)
and frames on them: the peg's target `hole` on the board (from perception) and the fixture's
`pocket` (`sim.tasks.fixture_layout.pocket_frame`; the place_on_fixture goal)."""


@dataclasses.dataclass(frozen=True)
class Stage:
    """One skill run.

    Attributes:
        skill: skill name (its server is `/<skill>_skill`).
        target_pose: (7,) goal [m, xyzw] in the base frame, or None when `target_object` is set.
        target_object: object whose pose is the goal ("" when `target_pose` is set).
        retries: extra attempts after a failure.
        timeout: longest wait for the skill's result per attempt [s].
        retreat: before the first attempt, back the open hand away and up (`retreat_path`), then
            resolve the target.
    """

    skill: str
    target_pose: tuple[float, ...] | None = None
    target_object: str = ""
    retries: int = 0
    timeout: float = 60.0
    retreat: bool = False


@dataclasses.dataclass(frozen=True)
class TaskPlan:
    name: str
    stages: tuple[Stage, ...]


def load_plan(path: str | Path, skills: list[str]) -> TaskPlan:
    """The plan in the YAML file `path`; `skills` are the known skill names."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"task file {str(path)!r}: no such file")
    return parse_plan(path.read_text(), skills)


def parse_plan(text: str, skills: list[str]) -> TaskPlan:
    """The plan in YAML `text`; `skills` are the known skill names."""
    import yaml

    from sim.experts.chain import RETREATED

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ParameterError(f"task file is not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list) or not data["stages"]:
        raise ParameterError("task file must be a mapping with a non-empty list `stages`")
    stages = []
    for i, raw in enumerate(data["stages"]):
        where = f"stage {i}"
        if not isinstance(raw, dict):
            raise ParameterError(f"{where} must be a mapping with keys {', '.join(STAGE_KEYS)}, got {raw!r}")
        unknown = sorted(set(raw) - set(STAGE_KEYS))
        if unknown:
            raise ParameterError(f"{where}: unknown keys {unknown}; known: {', '.join(STAGE_KEYS)}")
        skill = raw.get("skill")
        if skill not in skills:
            raise ParameterError(f"{where}: unknown skill {skill!r}; known: {', '.join(skills)}")
        pose, obj = _target(raw.get("target"), f"{where} ({skill})")
        retries = int(check_range(f"{where} retries", raw.get("retries", 0), 0, 10))
        timeout = check_range(f"{where} timeout", raw.get("timeout", 60.0), 1.0, 3600.0, unit="s")
        retreat = raw.get("retreat", skill in RETREATED)
        if not isinstance(retreat, bool):
            raise ParameterError(f"{where} ({skill}): retreat must be true or false, got {retreat!r}")
        stages.append(Stage(skill, pose, obj, retries, timeout, retreat))
    return TaskPlan(str(data.get("name", "task")), tuple(stages))


def _target(value, where: str) -> tuple[tuple[float, ...] | None, str]:
    if isinstance(value, dict) and set(value) == {"object"} and isinstance(value["object"], str):
        if value["object"] not in TARGET_OBJECTS:
            raise ParameterError(
                f"{where}: unknown target object {value['object']!r}; known: {', '.join(TARGET_OBJECTS)}"
            )
        return None, value["object"]
    if isinstance(value, list) and len(value) in (3, 7):
        try:
            a = np.asarray(value, float)
        except (TypeError, ValueError):
            a = np.array([np.nan])
        if np.all(np.isfinite(a)) and (len(a) == 3 or np.linalg.norm(a[3:]) > 1e-6):
            pose = np.concatenate([a, [0.0, 0.0, 0.0, 1.0]]) if len(a) == 3 else a
            return tuple(float(v) for v in pose), ""
    raise ParameterError(
        f"{where}: target must be {{object: <key>}}, [x, y, z] or [x, y, z, qx, qy, qz, qw] (finite), got {value!r}"
    )


def ground_truth_objects(keys, poses) -> dict[str, np.ndarray]:
    """Object key -> (7,) pose of the simulator's `poses` (K, 7) named by `keys` (K,), plus the
    frames on them a target may name: `pocket` when the fixture is among them."""
    from sim.perceived_goals import FIXTURE_OBJECT
    from sim.tasks.fixture_layout import pocket_frame

    objects = {k: np.asarray(p, float) for k, p in zip(keys, poses)}
    if FIXTURE_OBJECT in objects:
        objects["pocket"] = pocket_frame(objects[FIXTURE_OBJECT])
    return objects
