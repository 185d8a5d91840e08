"""SafetyFilter: every rule on its own, without a ROS graph."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError
from sim.limits import DEFAULT_ACTION_LIMITS, DEFAULT_WORKSPACE
from sim.safety import SafetyFilter, SafetyLimits, Verdict

DOWN = Rotation.from_euler("x", np.pi).as_quat()
HOME = np.concatenate([[0.5, 0.0, 0.3], DOWN])


def filt(safety, target, close=False, measured=HOME, stamp=0.0, now=0.1):
    return safety.filter(target, close, measured, stamp, now)


def test_defaults_are_the_simulators_limits():
    from sim.env import EnvConfig

    limits = SafetyLimits()
    assert limits.workspace == DEFAULT_WORKSPACE == EnvConfig().workspace
    assert limits.actions == DEFAULT_ACTION_LIMITS == EnvConfig().actions.limits


def test_small_step_passes_unchanged():
    target = HOME.copy()
    target[0] += 0.01
    cmd = filt(SafetyFilter(), target, close=True)
    assert cmd.verdict is Verdict.PASSED and cmd.reason == ""
    assert np.allclose(cmd.pose, target) and cmd.close_gripper


def test_large_translation_is_clipped_per_component_as_fmbs_robot_does():
    target = HOME.copy()
    target[:3] += [0.3, 0.0, -0.1]
    cmd = filt(SafetyFilter(), target)
    assert cmd.verdict is Verdict.LIMITED and "per axis" in cmd.reason
    step = cmd.pose[:3] - HOME[:3]
    limit = DEFAULT_ACTION_LIMITS.max_step_translation
    np.testing.assert_allclose(step, [limit, 0.0, -limit], atol=1e-12)
    np.testing.assert_allclose(cmd.pose[3:], HOME[3:])  # the orientation was within its limit


def test_a_step_within_the_limit_on_every_axis_passes_whole():
    target = HOME.copy()
    target[:3] += [0.05, 0.05, 0.05]  # 8.7 cm long, 5 cm per axis
    cmd = filt(SafetyFilter(), target)
    assert cmd.verdict is Verdict.PASSED
    np.testing.assert_allclose(cmd.pose, target)


def test_large_rotation_is_scaled_to_the_rotation_limit():
    target = HOME.copy()
    target[3:] = (Rotation.from_euler("z", 1.0) * Rotation.from_quat(DOWN)).as_quat()
    cmd = filt(SafetyFilter(), target)
    assert cmd.verdict is Verdict.LIMITED
    turn = (Rotation.from_quat(cmd.pose[3:]) * Rotation.from_quat(DOWN).inv()).magnitude()
    assert turn == pytest.approx(DEFAULT_ACTION_LIMITS.max_step_rotation, abs=1e-6)


def test_speed_limit_scales_with_the_time_since_the_last_command():
    safety = SafetyFilter(SafetyLimits(max_linear_speed=0.1))
    filt(safety, HOME, now=0.1)
    target = HOME.copy()
    target[0] += 0.05
    cmd = filt(safety, target, stamp=0.2, now=0.2)  # 0.1 s later: at most 0.01 m
    assert cmd.verdict is Verdict.LIMITED
    assert np.linalg.norm(cmd.pose[:3] - HOME[:3]) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "bad",
    [
        [np.nan, 0, 0.3, 0, 0, 0, 1],
        [0.5, np.inf, 0.3, 0, 0, 0, 1],
        [0.5, 0, 0.3, 0, 0, 0, 0],
        [0.5, 0, 0.3],
        "not a pose",
    ],
)
def test_malformed_targets_are_rejected_and_the_arm_holds(bad):
    cmd = filt(SafetyFilter(), bad)
    assert cmd.verdict is Verdict.REJECTED and cmd.holding
    assert np.allclose(cmd.pose, HOME)
    assert cmd.reason


def test_out_of_workspace_target_is_clipped_into_the_box_as_fmbs_robot_does():
    measured = HOME.copy()
    measured[2] = 0.02
    target = measured.copy()
    target[2] = -0.03  # below the table, within one step
    cmd = filt(SafetyFilter(), target, measured=measured)
    assert cmd.verdict is Verdict.LIMITED and not cmd.holding
    assert "clipped into the workspace" in cmd.reason
    np.testing.assert_allclose(cmd.pose[:3], [0.5, 0.0, DEFAULT_WORKSPACE.low[2]])


def test_far_target_moves_one_step_then_stays_in_the_box():
    measured = HOME.copy()
    measured[0] = DEFAULT_WORKSPACE.high[0] - 0.01
    target = measured.copy()
    target[:3] = [5.0, 0.0, 0.3]  # metres beyond the front face
    cmd = filt(SafetyFilter(), target, measured=measured)
    assert cmd.verdict is Verdict.LIMITED
    assert "per axis" in cmd.reason and "clipped into the workspace" in cmd.reason
    np.testing.assert_allclose(cmd.pose[:3], [DEFAULT_WORKSPACE.high[0], 0.0, 0.3])


def test_hold_latches_the_pose_where_holding_began_and_keeps_the_gripper():
    safety = SafetyFilter()
    filt(safety, HOME, close=True)
    moved = HOME.copy()
    moved[0] += 0.02
    first = filt(safety, [np.nan] * 7, measured=HOME, now=0.2, stamp=0.2)
    second = filt(safety, [np.nan] * 7, measured=moved, now=0.3, stamp=0.3)  # the arm drifted meanwhile
    assert np.allclose(first.pose, HOME) and np.allclose(second.pose, HOME)
    assert first.close_gripper and second.close_gripper
    # A valid command ends the hold.
    assert filt(safety, moved, measured=moved, now=0.4, stamp=0.4).verdict is Verdict.PASSED


def test_watchdog_holds_on_stale_observations():
    safety = SafetyFilter(SafetyLimits(observation_timeout=0.3))
    cmd = filt(safety, HOME, stamp=0.0, now=1.0)
    assert cmd.verdict is Verdict.STALE and "old" in cmd.reason
    assert np.allclose(cmd.pose, HOME)


def test_watchdog_hints_at_a_clock_mismatch():
    cmd = filt(SafetyFilter(), HOME, stamp=12.0, now=1.8e9)  # simulated stamps read on the wall clock
    assert cmd.verdict is Verdict.STALE and "use_sim_time" in cmd.reason


def test_no_observation_yet_gives_nothing_to_send():
    cmd = SafetyFilter().filter(HOME, False, None, None, 0.0)
    assert cmd.verdict is Verdict.STALE and cmd.pose is None


def test_emergency_stop_latches_until_released():
    safety = SafetyFilter()
    safety.engage_stop("operator")
    for t in (0.1, 0.2, 0.3):
        cmd = filt(safety, HOME, stamp=t, now=t)
        assert cmd.verdict is Verdict.STOPPED and "operator" in cmd.reason
    safety.release_stop()
    assert filt(safety, HOME, stamp=0.4, now=0.4).verdict is Verdict.PASSED


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"workspace_low": (1.0, 0, 0), "workspace_high": (0.5, 1, 1)}, "workspace_low"),
        ({"workspace_low": (0, 0)}, "workspace_low"),
        ({"max_step_translation": 5.0}, "max_step_translation"),
        ({"observation_timeout": 0.0}, "observation_timeout"),
        ({"max_step_rotation": float("nan")}, "max_step_rotation"),
    ],
)
def test_bad_limits_name_the_parameter(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        SafetyLimits(**kwargs)
