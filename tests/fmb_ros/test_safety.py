"""SafetyFilter: every rule on its own, without a ROS graph."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fmb.errors import ParameterError
from fmb_ros.safety import DEFAULT_WORKSPACE_HIGH, DEFAULT_WORKSPACE_LOW, SafetyFilter, SafetyLimits, Verdict

DOWN = Rotation.from_euler("x", np.pi).as_quat()
HOME = np.concatenate([[0.5, 0.0, 0.3], DOWN])


def filt(safety, target, close=False, measured=HOME, stamp=0.0, now=0.1):
    return safety.filter(target, close, measured, stamp, now)


def test_defaults_match_the_simulated_workspace():
    from sim.env import WORKSPACE_HIGH, WORKSPACE_LOW

    assert np.allclose(DEFAULT_WORKSPACE_LOW, WORKSPACE_LOW)
    assert np.allclose(DEFAULT_WORKSPACE_HIGH, WORKSPACE_HIGH)


def test_small_step_passes_unchanged():
    target = HOME.copy()
    target[0] += 0.01
    cmd = filt(SafetyFilter(), target, close=True)
    assert cmd.verdict is Verdict.PASSED and cmd.reason == ""
    assert np.allclose(cmd.pose, target) and cmd.close_gripper


def test_large_translation_is_scaled_to_the_step_limit_in_the_same_direction():
    target = HOME.copy()
    target[:3] += [0.3, 0.0, 0.1]
    cmd = filt(SafetyFilter(), target)
    assert cmd.verdict is Verdict.LIMITED
    step = cmd.pose[:3] - HOME[:3]
    assert np.linalg.norm(step) == pytest.approx(0.06)
    assert np.allclose(step / np.linalg.norm(step), [0.3, 0, 0.1] / np.linalg.norm([0.3, 0, 0.1]))


def test_large_rotation_is_scaled_to_the_rotation_limit():
    target = HOME.copy()
    target[3:] = (Rotation.from_euler("z", 1.0) * Rotation.from_quat(DOWN)).as_quat()
    cmd = filt(SafetyFilter(), target)
    assert cmd.verdict is Verdict.LIMITED
    turn = (Rotation.from_quat(cmd.pose[3:]) * Rotation.from_quat(DOWN).inv()).magnitude()
    assert turn == pytest.approx(0.25, abs=1e-6)


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


def test_out_of_workspace_target_is_rejected_not_clipped():
    target = HOME.copy()
    target[2] = -0.05  # below the table
    cmd = filt(SafetyFilter(), target)
    assert cmd.verdict is Verdict.REJECTED
    assert "outside the workspace" in cmd.reason
    assert np.allclose(cmd.pose, HOME)


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
