"""sim.teleop: Joy axes and buttons -> actions, the dead-man, the Joy timeout and rest, without ROS."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError
from sim.safety import SafetyFilter, SafetyLimits, Verdict
from sim.teleop import SPACENAV, JoyError, JoyMapping, Teleop, joy_action

DOWN = Rotation.from_euler("x", np.pi).as_quat()
HOME = np.concatenate([[0.5, 0.0, 0.3], DOWN])
DEADMAN, A, B = 9, 0, 1


def pad(lx=0.0, ly=0.0, rx=0.0, ry=0.0, pressed=(DEADMAN,)):
    """A game_controller_node message: 6 axes, 15 buttons."""
    buttons = [0] * 15
    for b in pressed:
        buttons[b] = 1
    return [lx, ly, rx, ry, 1.0, 1.0], buttons


def test_gamepad_defaults_map_sticks_to_base_frame_deltas():
    m = JoyMapping()
    a = joy_action(*pad(ly=1.0), m, closed=False)  # left stick full forward
    np.testing.assert_allclose(a.action, [0.02, 0, 0, 0, 0, 0, 0])
    assert a.enabled and a.moving
    a = joy_action(*pad(lx=1.0, ry=-1.0, rx=1.0), m, closed=False)  # left, down, yaw left
    np.testing.assert_allclose(a.action, [0, 0.02, -0.02, 0, 0, 0.1, 0])
    half = joy_action(*pad(ly=0.55), m, closed=False).action[0]  # dead zone 0.1 rescaled: (0.55-0.1)/0.9
    assert half == pytest.approx(0.01)
    assert not joy_action(*pad(ly=0.09), m, closed=False).moving


def test_deadman_released_gives_no_motion_and_no_gripper_change():
    a = joy_action(*pad(ly=1.0, pressed=(A,)), JoyMapping(), closed=False)
    assert not a.enabled and not a.moving and np.all(a.action == 0.0)


def test_gripper_buttons_latch():
    m = JoyMapping()
    assert joy_action(*pad(pressed=(DEADMAN, A)), m, closed=False).action[6] == 1.0
    assert joy_action(*pad(), m, closed=True).action[6] == 1.0  # stays closed
    assert joy_action(*pad(pressed=(DEADMAN, B)), m, closed=True).action[6] == 0.0


def test_scaling_is_clipped_to_fmbs_action_limits_and_signs_flip():
    m = JoyMapping(max_translation=0.06, max_rotation=0.25, signs=(-1, 1, 1, 1, 1, 1))
    a = joy_action(*pad(ly=5.0, rx=1.0), m, closed=False).action  # an out-of-range axis value is clipped
    np.testing.assert_allclose(a[:6], [-0.06, 0, 0, 0, 0, 0.25])
    with pytest.raises(ParameterError, match="max_translation"):
        JoyMapping(max_translation=0.1)
    with pytest.raises(ParameterError, match="axes must be 6"):
        JoyMapping(axes=(0, 1, 2))
    with pytest.raises(ParameterError, match="both 3"):
        JoyMapping(close_button=3, open_button=3)


def test_spacenav_has_six_axes_and_no_deadman():
    a = joy_action([0, 0, 0, 0.5, 0, 0], [0, 0], SPACENAV, closed=False)
    assert a.enabled and a.moving and a.action[3] > 0 and np.all(a.action[[0, 1, 2, 4, 5]] == 0)


def test_too_short_a_joy_message_names_the_axis():
    with pytest.raises(JoyError, match="axis 3 drives z"):
        joy_action([0.0, 0.0], [0] * 15, JoyMapping(), closed=False)
    with pytest.raises(JoyError, match="deadman_button is 9"):
        joy_action([0.0] * 6, [0] * 4, JoyMapping(), closed=False)


def test_teleop_moves_holds_when_released_or_stale_and_never_drifts_at_rest():
    teleop = Teleop(JoyMapping(), SafetyFilter(SafetyLimits()), joy_timeout=0.5)
    assert teleop.command(None, None, 0.0).pose is None  # no pose to hold yet: nothing to send
    cmd = teleop.command(HOME, 0.0, 0.0)
    assert cmd.verdict is Verdict.STALE and teleop.state == "no joy" and "no Joy message yet" in cmd.reason
    np.testing.assert_allclose(cmd.pose, HOME)  # no Joy yet: hold where the arm is

    teleop.on_joy(*pad(ly=1.0, pressed=(DEADMAN, A)), now=0.0)
    cmd = teleop.command(HOME, 0.0, 0.1)
    assert teleop.state == "moving" and cmd.verdict is Verdict.PASSED and cmd.close_gripper
    np.testing.assert_allclose(cmd.pose[:3], HOME[:3] + [0.02, 0, 0])

    # At rest with the dead-man held: the pose latched at rest, however the measured pose sags.
    teleop.on_joy(*pad(), now=0.2)
    rest = teleop.command(HOME, 0.2, 0.3)
    sagged = HOME.copy()
    sagged[2] -= 0.002
    again = teleop.command(sagged, 0.3, 0.4)
    assert teleop.state == "resting" and again.close_gripper
    np.testing.assert_allclose(again.pose, rest.pose)
    np.testing.assert_allclose(again.pose, HOME)

    # Released: the filter's hold (the measured pose when the hold began, latched; gripper kept).
    teleop.on_joy(*pad(ly=1.0, pressed=()), now=0.5)
    held = teleop.command(sagged, 0.5, 0.6)
    assert held.holding and teleop.state == "released" and held.close_gripper
    moved = sagged.copy()
    moved[0] += 0.01
    np.testing.assert_allclose(teleop.command(moved, 0.6, 0.7).pose, sagged)

    # The Joy stream stops: hold after joy_timeout.
    teleop.on_joy(*pad(ly=1.0), now=1.0)
    assert teleop.command(HOME, 1.0, 1.4).verdict is Verdict.PASSED
    cmd = teleop.command(HOME, 1.5, 1.6)
    assert cmd.holding and teleop.state == "no joy" and "joy_timeout 0.5 s" in cmd.reason


def test_teleop_goes_through_the_safety_filter():
    safety = SafetyFilter(SafetyLimits(workspace_high=(0.85, 0.45, 0.3)))
    teleop = Teleop(JoyMapping(), safety)
    teleop.on_joy(*pad(ry=1.0), now=0.0)  # up, at the box's top face
    cmd = teleop.command(HOME, 0.0, 0.1)
    assert cmd.verdict is Verdict.LIMITED and cmd.pose[2] == pytest.approx(0.3)
    cmd = teleop.command(HOME, -1.0, 0.1)  # an observation 1.1 s old: the watchdog holds
    assert cmd.verdict is Verdict.STALE and teleop.state == "stale"
    safety.engage_stop()
    assert teleop.command(HOME, 0.1, 0.1).verdict is Verdict.STOPPED
    teleop.on_joy([0.0], [1], now=0.2)  # a message the mapping cannot read: hold, say why
    cmd = teleop.command(HOME, 0.2, 0.2)
    assert cmd.holding and teleop.state == "bad joy" and "axis 1 drives x" in cmd.reason
