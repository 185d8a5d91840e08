"""Teleoperation: joystick axes and buttons (a `sensor_msgs/Joy`'s) -> FMB actions, through the safety filter.

    mapping = JoyMapping()                                    # a gamepad on the stock `joy` node
    teleop = Teleop(mapping, SafetyFilter(SafetyLimits()))
    teleop.on_joy(axes, buttons, now)                         # every Joy message (receive time [s])
    cmd = teleop.command(measured_tcp, observation_stamp, now)   # at 10 Hz: publish cmd.pose, cmd.close_gripper

No ROS here: `fmb_ros.teleop_node` is the node around it. An action is FMB's (7,): a TCP delta in the
base frame, translation [m] x3 and rotation vector [rad] x3, per 10 Hz command, and the gripper (1 =
close), as `sim.env.FmbEnv.step` and the skill servers take it. Axis i of the mapping moves action
component i by `axis value x sign x max_translation (or max_rotation)` after a dead zone; the result is
clipped to `sim.limits.DEFAULT_ACTION_LIMITS` and then goes through `SafetyFilter.filter_action`, the
skill servers' rule (step limits, speed limits, workspace box, watchdog, emergency stop).

Holding, never drifting: with the dead-man button released, no Joy message for `joy_timeout`, or a
message the mapping cannot read, the command is the filter's hold (the measured pose latched when the
hold began, the gripper as last commanded). With the dead-man held and every axis inside its dead
zone, the command is the pose latched when the sticks came to rest (through the filter), not "the
measured pose again" each tick, which would follow an arm that sags under a load.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from fmb_core.errors import FmbError, ParameterError, check_range
from sim.limits import DEFAULT_ACTION_LIMITS
from sim.safety import SafeCommand, SafetyFilter, Verdict

COMPONENTS = ("x", "y", "z", "roll", "pitch", "yaw")
"""The action components an axis can drive (base frame; roll/pitch/yaw = rotation vector about x/y/z)."""


class JoyError(FmbError):
    """A Joy message the mapping cannot read (too few axes or buttons)."""


@dataclasses.dataclass(frozen=True)
class JoyMapping:
    """Which joystick axis drives which action component, and how far.

    Defaults: a gamepad on the stock `joy` package's `game_controller_node` (SDL's layout, the same
    for every pad: axes 0/1 left stick x/y, 2/3 right stick x/y, +1 = left/up; buttons 0 A, 1 B,
    9 left shoulder), the operator behind the robot looking along +x: left stick = x/y, right stick =
    z (up/down) and yaw (left/right), no roll or pitch; hold the left shoulder button to move, A
    closes, B opens. `joy_node` orders axes and buttons as the device does (set them per device).

    Attributes:
        axes: (6,) int: the Joy axis for x, y, z, roll, pitch, yaw; -1 = that component stays 0.
        signs: (6,) float: each component's axis value is multiplied by this (-1 flips a direction).
        deadzone: axis values of magnitude below this count as 0 (the rest is rescaled to 0..1).
        max_translation: translation per command at full deflection [m] (at 10 Hz x10 = m/s).
        max_rotation: rotation per command at full deflection [rad].
        deadman_button: the button that must be held for the arm to move; -1 = none (a device that
            springs back to rest when let go, e.g. a 3D mouse; the Joy timeout still holds).
        close_button, open_button: buttons that close / open the gripper (the command is latched).
    """

    axes: tuple[int, ...] = (1, 0, 3, -1, -1, 2)
    signs: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    deadzone: float = 0.1
    max_translation: float = 0.02
    max_rotation: float = 0.1
    deadman_button: int = 9
    close_button: int = 0
    open_button: int = 1

    def __post_init__(self):
        axes, signs = tuple(int(a) for a in self.axes), tuple(float(s) for s in self.signs)
        if len(axes) != 6 or any(a < -1 for a in axes):
            raise ParameterError(f"axes must be 6 Joy axis indices (or -1) for {COMPONENTS}, got {list(axes)}", "axes")
        if len(signs) != 6 or not all(np.isfinite(signs)):
            raise ParameterError(f"signs must be 6 finite numbers for {COMPONENTS}, got {list(signs)}", "signs")
        check_range("deadzone", self.deadzone, 0.0, 0.9)
        check_range("max_translation", self.max_translation, 0.0, DEFAULT_ACTION_LIMITS.max_step_translation, "m")
        check_range("max_rotation", self.max_rotation, 0.0, DEFAULT_ACTION_LIMITS.max_step_rotation, "rad")
        for name in ("deadman_button", "close_button", "open_button"):
            check_range(name, getattr(self, name), -1, 1000)
        if self.close_button >= 0 and self.close_button == self.open_button:
            raise ParameterError(f"close_button and open_button are both {self.close_button}", "open_button")
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "signs", signs)


SPACENAV = JoyMapping(axes=(0, 1, 2, 3, 4, 5), deadzone=0.05, deadman_button=-1, close_button=1, open_button=0)
"""A 3D mouse on the `spacenav` node (Joy axes x y z roll pitch yaw scaled to about +-1, its two buttons)."""


class JoyAction(NamedTuple):
    """`joy_action`'s result.

    Attributes:
        action: (7,) the action: TCP delta (translation [m], rotation vector [rad], base frame) and
            gripper (1.0 = close, 0.0 = open).
        enabled: the dead-man button is held (or there is none).
        moving: some axis is outside its dead zone.
    """

    action: np.ndarray
    enabled: bool
    moving: bool


def joy_action(axes, buttons, mapping: JoyMapping, closed: bool) -> JoyAction:
    """One Joy message's action. `closed` is the gripper as last commanded: it changes only while the
    dead-man is held and close_button / open_button is pressed (close wins if both).

    Args:
        axes: (n,) float Joy axes, each in [-1, 1].
        buttons: (m,) int Joy buttons (1 = pressed).

    Raises JoyError naming the mapped axis or button the message lacks.
    """
    axes = np.asarray(axes, dtype=float).reshape(-1)
    buttons = np.asarray(buttons, dtype=int).reshape(-1)
    for i, a in enumerate(mapping.axes):
        if a >= axes.size:
            raise JoyError(f"Joy has {axes.size} axes; axis {a} drives {COMPONENTS[i]} (set the axes parameter)")
    for name in ("deadman_button", "close_button", "open_button"):
        b = getattr(mapping, name)
        if b >= buttons.size:
            raise JoyError(f"Joy has {buttons.size} buttons; {name} is {b}")

    def pressed(b: int) -> bool:
        return b >= 0 and bool(buttons[b])

    enabled = mapping.deadman_button < 0 or pressed(mapping.deadman_button)
    values = np.array([axes[a] if a >= 0 else 0.0 for a in mapping.axes]) * np.asarray(mapping.signs)
    values = np.clip(np.nan_to_num(values, nan=0.0), -1.0, 1.0)
    magnitude = np.clip((np.abs(values) - mapping.deadzone) / (1.0 - mapping.deadzone), 0.0, 1.0)
    values = np.sign(values) * magnitude
    scale = np.array([mapping.max_translation] * 3 + [mapping.max_rotation] * 3)
    delta = DEFAULT_ACTION_LIMITS.clip_delta(values * scale) if enabled else np.zeros(6)
    if enabled and pressed(mapping.close_button):
        closed = True
    elif enabled and pressed(mapping.open_button):
        closed = False
    return JoyAction(np.append(delta, float(closed)), enabled, bool(enabled and np.any(magnitude > 0)))


class Teleop:
    """A Joy stream made into safe commands at the control rate (see module docstring).

    Args:
        mapping: axes, buttons and scaling.
        safety: the command path's filter (one per commanded arm).
        joy_timeout: hold when the newest Joy message arrived longer ago than this [s].
    """

    def __init__(self, mapping: JoyMapping, safety: SafetyFilter, joy_timeout: float = 0.5):
        self.mapping, self.safety = mapping, safety
        self.joy_timeout = check_range("joy_timeout", joy_timeout, 0.01, 10.0, unit="s")
        self.closed = False
        self.joy: tuple[float, np.ndarray, np.ndarray] | None = None  # (receive time [s], axes, buttons)
        self.rest: np.ndarray | None = None  # (7,) pose latched when the sticks came to rest
        self.state = "no joy"

    def on_joy(self, axes, buttons, now: float) -> None:
        """A Joy message received at `now` [s] (the clock `command` is called with)."""
        self.joy = (now, np.asarray(axes, dtype=float), np.asarray(buttons, dtype=int))

    def command(self, measured_pose, observation_stamp: float | None, now: float) -> SafeCommand:
        """The command of one control tick; `state` says why (moving, resting, released, no joy, ...)."""
        if self.joy is None or not now - self.joy[0] <= self.joy_timeout:
            age = "no Joy message yet" if self.joy is None else f"last Joy message {now - self.joy[0]:.2f} s ago"
            return self._hold("no joy", f"{age} (joy_timeout {self.joy_timeout:g} s)", measured_pose)
        try:
            joy = joy_action(self.joy[1], self.joy[2], self.mapping, self.closed)
        except JoyError as e:
            return self._hold("bad joy", str(e), measured_pose)
        if not joy.enabled:
            return self._hold("released", "dead-man button released", measured_pose)
        ready = self.safety.check_ready(measured_pose, observation_stamp, now)
        if ready is not None:  # no fresh observation or an emergency stop: the filter's hold
            self.rest, self.state = None, ready.verdict.value
            return ready
        self.closed = bool(joy.action[6] >= 0.5)
        if joy.moving:
            self.rest, self.state = None, "moving"
            cmd = self.safety.filter_action(joy.action, measured_pose, observation_stamp, now)
        else:
            if self.rest is None:
                self.rest = np.asarray(measured_pose, dtype=float).copy()
            self.state = "resting"
            cmd = self.safety.filter(self.rest, self.closed, measured_pose, observation_stamp, now)
        return cmd

    def _hold(self, state: str, reason: str, measured_pose) -> SafeCommand:
        self.rest, self.state = None, state
        return self.safety.hold(measured_pose, Verdict.STALE, reason)
