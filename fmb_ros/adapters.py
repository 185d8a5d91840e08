"""Real-robot output adapters whose message types only a ROS 2 install on the robot has.

PyPI carries no `control_msgs`, `franka_msgs` or `tf2_ros`; a robot's ROS install does. These
adapters import them when a node is configured to use them (a parameter), and say clearly what is
missing otherwise:

- `FollowJointTrajectoryOutput`: arm joints as `control_msgs/action/FollowJointTrajectory` goals
  (ros2_control's JointTrajectoryController action; each new goal preempts the previous one);
- `FrankaGripperOutput`: open / close as `franka_msgs/action/Move` and `franka_msgs/action/Grasp`
  (franka_ros2's gripper node), sent when the command changes;
- `TopicGripperOutput`: the opening [m] as `std_msgs/Float64` (the simulator, or a bridge node);
- `TfPublisher`: poses as `/tf` frames through `tf2_ros.TransformBroadcaster`.
"""

from __future__ import annotations

import importlib

from fmb_ros.exceptions import RosError

_PACKAGES = {
    "control_msgs": "ros-<distro>-control-msgs (ros2_control)",
    "franka_msgs": "ros-<distro>-franka-msgs (franka_ros2)",
    "tf2_ros": "ros-<distro>-tf2-ros",
}


def robot_import(module: str, attribute: str, why: str):
    """`module.attribute`, or a RosError naming `why` (the parameter that asked for it) and the
    package that provides it."""
    package = module.split(".")[0]
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as e:
        raise RosError(
            f"{why} needs {module}.{attribute} ({type(e).__name__}: {e}); it comes with the robot's ROS 2 install "
            f"({_PACKAGES.get(package, package)}; not on PyPI) - source that install, or choose another value"
        ) from None


class TopicGripperOutput:
    """The finger opening [m] on a `std_msgs/Float64` topic (0.0 closes)."""

    def __init__(self, node, topic: str, open_width: float, qos):
        from std_msgs.msg import Float64

        self._msg = Float64
        self.open_width = open_width
        self.publisher = node.create_publisher(Float64, topic, qos)

    def send(self, close: bool) -> None:
        self.publisher.publish(self._msg(data=0.0 if close else float(self.open_width)))


class FrankaGripperOutput:
    """franka_ros2's gripper actions: `<namespace>/grasp` to close with `force` [N], `<namespace>/move`
    to open to `open_width` [m]; a goal is sent only when the command changes."""

    def __init__(self, node, namespace: str, open_width: float, force: float, speed: float = 0.1):
        from rclpy.action import ActionClient

        why = "gripper_interface franka_action"
        self._grasp_type = robot_import("franka_msgs.action", "Grasp", why)
        self._move_type = robot_import("franka_msgs.action", "Move", why)
        ns = namespace.rstrip("/")
        self.grasp = ActionClient(node, self._grasp_type, f"{ns}/grasp")
        self.move = ActionClient(node, self._move_type, f"{ns}/move")
        self.open_width, self.force, self.speed = open_width, force, speed
        self.last: bool | None = None

    def send(self, close: bool) -> None:
        if close == self.last:
            return
        self.last = close
        if close:
            goal = self._grasp_type.Goal(width=0.0, speed=self.speed, force=self.force)
            goal.epsilon.inner, goal.epsilon.outer = 0.1, 0.1  # [m]: grasp whatever width the part has
            self.grasp.send_goal_async(goal)
        else:
            self.move.send_goal_async(self._move_type.Goal(width=self.open_width, speed=self.speed))


class FollowJointTrajectoryOutput:
    """Arm joints as FollowJointTrajectory goals on `action` (one point reached in `duration` [s])."""

    def __init__(self, node, action: str, joints):
        from rclpy.action import ActionClient

        self._type = robot_import(
            "control_msgs.action", "FollowJointTrajectory", "command_interface follow_joint_trajectory"
        )
        self.client = ActionClient(node, self._type, action)
        self.joints = list(joints)

    def send(self, q, duration: float) -> None:
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        from fmb_ros import convert

        point = JointTrajectoryPoint(positions=[float(v) for v in q])
        point.time_from_start = convert.to_duration(duration)
        goal = self._type.Goal(trajectory=JointTrajectory(joint_names=self.joints, points=[point]))
        self.client.send_goal_async(goal)


class TfPublisher:
    """Poses (7,) [m, xyzw] as `/tf` frames under `parent`."""

    def __init__(self, node):
        broadcaster = robot_import("tf2_ros", "TransformBroadcaster", "publish_tf true")
        self.broadcaster = broadcaster(node)

    def send(self, poses: dict, parent: str, stamp) -> None:
        from geometry_msgs.msg import TransformStamped

        transforms = []
        for child, pose in poses.items():
            t = TransformStamped()
            t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, parent, child
            t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = map(float, pose[:3])
            r = t.transform.rotation
            r.x, r.y, r.z, r.w = map(float, pose[3:])
            transforms.append(t)
        self.broadcaster.sendTransform(transforms)
