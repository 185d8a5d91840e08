"""sim.limits: FMB's per-component step clip, then the clip into the box, on the simulator's action path
and the safety filter's command path alike."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError
from sim.controller import ActionSpec
from sim.limits import DEFAULT_ACTION_LIMITS, DEFAULT_WORKSPACE, ActionLimits, Workspace, limit_pose
from sim.safety import SafetyFilter, SafetyLimits, Verdict
from sim.spatial import apply_delta

DOWN = Rotation.from_euler("x", np.pi).as_quat()
HOME = np.concatenate([[0.5, 0.0, 0.3], DOWN])
T, R = DEFAULT_ACTION_LIMITS.max_step_translation, DEFAULT_ACTION_LIMITS.max_step_rotation


def test_the_action_space_clips_per_component():
    np.testing.assert_allclose(DEFAULT_ACTION_LIMITS.clip_delta([0.05, 0.05, 0.05, 0, 0, 0]), [0.05] * 3 + [0] * 3)
    np.testing.assert_allclose(
        DEFAULT_ACTION_LIMITS.clip_delta([0.1, -0.2, 0.01, 0.5, -0.1, -1.0]), [T, -T, 0.01, R, -0.1, -R]
    )
    np.testing.assert_allclose(ActionSpec().low(), [-T] * 3 + [-R] * 3 + [0.0])
    assert DEFAULT_ACTION_LIMITS.delta_within([[T, -T, T, R, -R, R], [T + 1e-6, 0, 0, 0, 0, 0]]).tolist() == [
        True,
        False,
    ]


def test_speed_limits_bind_only_faster_than_10_hz():
    assert DEFAULT_ACTION_LIMITS.step_bounds(0.1) == pytest.approx((T, R))
    assert DEFAULT_ACTION_LIMITS.step_bounds(0.05) == pytest.approx((T / 2, R / 2))
    assert DEFAULT_ACTION_LIMITS.step_bounds() == (T, R)


def test_limit_pose_clips_the_step_per_component_then_into_the_box():
    target = apply_delta(HOME, np.array([0.05, 0.05, 0.05, 0.2, 0.2, 0.0]))  # 8.7 cm, 0.28 rad: within per axis
    out = limit_pose(HOME, target)
    assert not out.step_limited and not out.clipped
    np.testing.assert_allclose(out.pose, target)
    out = limit_pose(HOME, apply_delta(HOME, np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.6])))
    assert out.step_limited
    np.testing.assert_allclose(
        (Rotation.from_quat(out.pose[3:]) * Rotation.from_quat(DOWN).inv()).as_rotvec(), [0, 0, R], atol=1e-12
    )
    box = Workspace(DEFAULT_WORKSPACE.low, (*DEFAULT_WORKSPACE.high[:2], 0.32))
    out = limit_pose(HOME, apply_delta(HOME, np.array([0.0, 0.0, 0.05, 0, 0, 0])), workspace=box)
    assert out.clipped and not out.step_limited
    np.testing.assert_allclose(out.pose[:3], [0.5, 0.0, 0.32])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"low": (1.0, 0, 0), "high": (0.5, 1, 1)}, "workspace_low"),
        ({"low": (0, 0)}, "workspace_low"),
        ({"high": (1.0, np.nan, 1.0)}, "workspace_high"),
    ],
)
def test_bad_workspace_names_the_parameter(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        Workspace(**kwargs)


def test_bad_action_limits_name_the_parameter():
    with pytest.raises(ParameterError, match="max_step_rotation"):
        ActionLimits(max_step_rotation=2.0)
    with pytest.raises(ParameterError, match="margin"):
        DEFAULT_WORKSPACE.shrunk(0.5)


@pytest.fixture(scope="module")
def env_and_box():
    """A grasp scene whose workspace ceiling is 5.5 cm above the start, so that a step can leave it."""
    from sim.env import make_env

    probe = make_env("grasp", seed=3, randomize=False)
    start_z = probe.reset(seed=3)[0]["tcp_pose"][2]
    probe.close()
    box = Workspace(
        DEFAULT_WORKSPACE.low, (DEFAULT_WORKSPACE.high[0], DEFAULT_WORKSPACE.high[1], float(start_z) + 0.055)
    )
    env = make_env("grasp", seed=3, randomize=False, workspace=box)
    env.reset(seed=3)
    yield env, box
    env.close()


ACTIONS = [
    [0.05, 0.05, 0.05, 0.0, 0.0, 0.0, 0.0],  # within the limit on every axis: 8.7 cm, sent whole
    [0.1, -0.2, 0.01, 0.0, 0.0, 0.0, 1.0],  # clipped per axis to (6, -6, 1) cm
    [0.0, 0.01, 0.0, 0.5, -0.1, -1.0, 1.0],  # rotation clipped per axis
    [0.0, 0.0, T, 0.0, 0.0, 0.0, 0.0],  # upwards through the ceiling: clipped into the box
    [0.02, 0.0, 0.09, 0.1, 0.0, 0.0, 0.0],  # both: step-clipped to 6 cm, then into the box
]


def test_the_simulator_and_the_safety_filter_command_the_same_pose(env_and_box):
    """FmbEnv.step(action) and SafetyFilter.filter(the same step as an absolute target) at 10 Hz give
    the same TCP target: one rule (per component, then clipped into the box) on both paths."""
    env, box = env_and_box
    safety = SafetyFilter(SafetyLimits(workspace_low=box.low, workspace_high=box.high))
    now = 0.0
    reasons = []
    for action in ACTIONS:
        measured = env.tcp_pose().copy()
        asked = apply_delta(measured, np.asarray(action[:6], float))
        cmd = safety.filter(asked, action[6] >= 0.5, measured, now, now)
        env.step(action)
        sim_target = env.snapshot().target
        np.testing.assert_allclose(cmd.pose[:3], sim_target[:3], atol=1e-9, err_msg=str(action))
        turn = (Rotation.from_quat(cmd.pose[3:]) * Rotation.from_quat(sim_target[3:]).inv()).magnitude()
        assert turn < 1e-9, (action, turn)
        assert box.contains(cmd.pose[:3])
        reasons.append((cmd.verdict, cmd.reason))
        now += 0.1
    assert reasons[0] == (Verdict.PASSED, "")
    assert all(v is Verdict.LIMITED and "per axis" in r for v, r in reasons[1:3])
    assert all(v is Verdict.LIMITED and "clipped into the workspace" in r for v, r in reasons[3:])
