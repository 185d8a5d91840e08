"""`fmb_teleop`: a joystick (`sensor_msgs/Joy`) drives the arm in FMB's action space at 10 Hz.

The stock `joy` node with a gamepad, or `spacenav` with a 3D mouse (it publishes Joy too), gives the
Joy messages; `sim.teleop` maps them to actions (TCP deltas and the gripper; axes, buttons and scaling
are parameters) and passes them through the skill servers' safety filter (`sim.safety`, the same
limit parameters). The commands go out as a skill server's do (`equilibrium_pose` and
`gripper/command`), so the node drives `fmb_sim_robot` or a real arm's Cartesian impedance controller
alike, and `fmb_recorder` records them as the demonstration's actions.

The arm moves only while the dead-man button is held; released, or no Joy message within
`joy_timeout`, it holds (the filter's hold: the measured pose latched when the hold began). The node
commands every tick, holding included: run no skill server on the same arm at the same time.
"""

from __future__ import annotations

import dataclasses

from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Joy

from fmb_core.errors import check_choice, check_range
from fmb_ros import convert, qos
from fmb_ros.params import declare_all
from sim.safety import SafetyFilter, SafetyLimits
from sim.teleop import JoyMapping, Teleop

_LIMITS = SafetyLimits()

PARAMETERS: dict[str, tuple[object, str]] = {
    "rate": (10.0, "command rate [Hz] (FMB: 10)"),
    "base_frame": ("panda_link0", "robot base frame: commands are in it"),
    "joy_topic": ("joy", "sensor_msgs/Joy in: the joystick (joy node) or 3D mouse (spacenav node)"),
    "joy_timeout": (0.5, "hold when the newest Joy message arrived longer ago than this [s]"),
    "axes": (
        [1, 0, 3, -1, -1, 2],
        "Joy axis of x, y, z, roll, pitch, yaw (-1 = none); default: joy's game_controller_node (SDL layout)",
    ),
    "signs": ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "factor of each component's axis value (-1 flips a direction)"),
    "deadzone": (0.1, "axis values of magnitude below this count as 0 (the rest rescaled to 0..1)"),
    "max_translation": (0.02, "TCP move per command at full deflection [m] (x rate = speed)"),
    "max_rotation": (0.1, "TCP turn per command at full deflection [rad]"),
    "deadman_button": (9, "button held for the arm to move (-1 = none: a 3D mouse); default: the left shoulder (LB)"),
    "close_button": (0, "button that closes the gripper (latched); default A"),
    "open_button": (1, "button that opens the gripper (latched); default B"),
    "tcp_pose_topic": ("tcp_pose", "geometry_msgs/PoseStamped in: measured TCP pose [m]"),
    "equilibrium_pose_topic": ("equilibrium_pose", "geometry_msgs/PoseStamped out: impedance target [m]"),
    "gripper_interface": ("topic", "topic (std_msgs/Float64 opening) or franka_action (franka_msgs Move/Grasp)"),
    "gripper_command_topic": ("gripper/command", "std_msgs/Float64 out: finger opening [m] (0 = close)"),
    "franka_gripper_namespace": ("/franka_gripper", "franka_action: namespace of the move and grasp actions"),
    "gripper_force": (70.0, "franka_action: grasp force [N]"),
    "status_topic": ("~/status", "diagnostic_msgs/DiagnosticStatus out, every tick: state, safety, joy age"),
    "workspace_low": (list(_LIMITS.workspace_low), "safety: lower TCP box corner in base_frame [m]"),
    "workspace_high": (list(_LIMITS.workspace_high), "safety: upper TCP box corner in base_frame [m]"),
    "max_step_translation": (_LIMITS.max_step_translation, "safety: largest TCP move per command and axis [m]"),
    "max_step_rotation": (_LIMITS.max_step_rotation, "safety: largest TCP turn per command and axis [rad]"),
    "max_linear_speed": (_LIMITS.max_linear_speed, "safety: TCP speed limit per axis [m/s]"),
    "max_angular_speed": (_LIMITS.max_angular_speed, "safety: TCP turn rate limit per axis [rad/s]"),
    "observation_timeout": (_LIMITS.observation_timeout, "safety: hold when the newest TCP pose is older [s]"),
}
LIMIT_NAMES = (
    "workspace_low",
    "workspace_high",
    "max_step_translation",
    "max_step_rotation",
    "max_linear_speed",
    "max_angular_speed",
    "observation_timeout",
)
MAPPING_NAMES = tuple(f.name for f in dataclasses.fields(JoyMapping))


class TeleopNode(Node):
    """See module docstring."""

    def __init__(self, **kwargs):
        super().__init__("fmb_teleop", **kwargs)
        p = self.params = declare_all(self, PARAMETERS, read_only=tuple(PARAMETERS))
        from sim.panda import GRIPPER_OPEN

        rate = check_range("rate", p["rate"], 1.0, 100.0, unit="Hz")
        check_choice("gripper_interface", p["gripper_interface"], ("topic", "franka_action"))
        limits = SafetyLimits(**{k: tuple(p[k]) if isinstance(p[k], list) else p[k] for k in LIMIT_NAMES})
        mapping = JoyMapping(**{k: tuple(p[k]) if isinstance(p[k], list) else p[k] for k in MAPPING_NAMES})
        self.safety = SafetyFilter(limits)
        self.teleop = Teleop(mapping, self.safety, float(p["joy_timeout"]))
        self.tcp = None
        self.tcp_stamp: float | None = None
        self.last_verdict = ""
        self.last_reason = ""

        self.pub_pose = self.create_publisher(PoseStamped, p["equilibrium_pose_topic"], qos.COMMAND)
        from fmb_ros import adapters

        if p["gripper_interface"] == "franka_action":
            self.gripper = adapters.FrankaGripperOutput(
                self, p["franka_gripper_namespace"], GRIPPER_OPEN, float(p["gripper_force"])
            )
        else:
            self.gripper = adapters.TopicGripperOutput(self, p["gripper_command_topic"], GRIPPER_OPEN, qos.COMMAND)
        self.pub_status = self.create_publisher(DiagnosticStatus, p["status_topic"], qos.STATE)
        self.create_subscription(Joy, p["joy_topic"], self.on_joy, qos.SENSOR)  # best effort: any Joy publisher
        self.create_subscription(PoseStamped, p["tcp_pose_topic"], self.on_tcp_pose, qos.STATE)
        self.timer = self.create_timer(1.0 / rate, self.on_tick)  # [s] on the node's clock
        button = "none" if mapping.deadman_button < 0 else f"button {mapping.deadman_button}"
        self.get_logger().info(f"teleoperation from {p['joy_topic']} at {rate:g} Hz; dead-man {button}")

    def now(self) -> float:
        """The node clock [s] (simulated time under use_sim_time): Joy receive times and ticks."""
        return self.get_clock().now().nanoseconds * 1e-9

    def on_joy(self, msg: Joy) -> None:
        self.teleop.on_joy(list(msg.axes), list(msg.buttons), self.now())

    def on_tcp_pose(self, msg: PoseStamped) -> None:
        self.tcp, _, self.tcp_stamp = convert.pose_stamped_array(msg)

    def on_tick(self) -> None:
        now = self.now()
        cmd = self.teleop.command(self.tcp, self.tcp_stamp, now)
        if cmd.pose is not None:
            self.pub_pose.publish(convert.pose_stamped_msg(cmd.pose, self.params["base_frame"], now))
            self.gripper.send(bool(cmd.close_gripper))
        state = self.teleop.state
        joy = self.teleop.joy
        values = {
            "state": state,
            "safety": cmd.verdict.value,
            "gripper": "close" if cmd.close_gripper else "open",
            "joy_age": "none" if joy is None else round(now - joy[0], 3),  # [s]
            "emergency_stop": self.safety.stopped,
        }
        level = "ok" if state in ("moving", "resting") and not cmd.holding else "warn"
        message = cmd.reason or state
        if (cmd.verdict.value, cmd.reason) != (self.last_verdict, self.last_reason) and cmd.reason:
            self.get_logger().info(f"{state}: {cmd.reason}", throttle_duration_sec=2.0)
        self.last_verdict, self.last_reason = cmd.verdict.value, cmd.reason
        self.pub_status.publish(convert.status_msg(self.get_name(), level, message, values))


def main(args=None) -> None:
    from fmb_ros.spin import exit_process, spin_nodes

    exit_process(spin_nodes(args, TeleopNode))


if __name__ == "__main__":
    main()
