"""`InputWatcher`: says which inputs of a set of nodes nobody publishes yet (for `fmb ros up robot`).

Every `period` seconds it reads, from the ROS graph, the topics each watched node subscribes to
(except those in its own namespace, such as `~/goal`, which a user sends) and counts their
publishers; when the set of topics without a publisher changes it prints it, e.g.

    fmb ros up robot: waiting for 2 input(s):
      /camera/points [sensor_msgs/msg/PointCloud2] (fmb_perception)
      /franka_robot_state_broadcaster/current_pose [geometry_msgs/msg/PoseStamped] (grasp_skill)

and "all inputs have publishers" once the driver and cameras are up.
"""

from __future__ import annotations

import sys

from rclpy.node import Node

IGNORED = ("/parameter_events", "/clock")


class InputWatcher(Node):
    """See module docstring. `watched`: names of the nodes (in the root namespace) to watch."""

    def __init__(self, watched, label: str = "fmb ros up", period: float = 2.0, out=None, **kwargs):
        super().__init__("fmb_input_watcher", **kwargs)
        self.watched, self.label, self.out = list(watched), label, out or sys.stdout
        self.missing: list[str] | None = None
        self.timer = self.create_timer(period, self.on_tick)  # [s], wall clock

    def waiting(self) -> list[str]:
        """'topic (node)' for every subscribed topic of a watched node with no publisher."""
        missing = []
        for name in self.watched:
            try:
                topics = self.get_subscriber_names_and_types_by_node(name, "/")
            except Exception:  # noqa: BLE001 - the node is not in the graph (yet)
                missing.append(f"node {name} (not in the graph)")
                continue
            for topic, types in topics:
                if topic.startswith(f"/{name}/"):  # the node's own inputs (goal): sent by a user, not awaited
                    continue
                if topic not in IGNORED and self.count_publishers(topic) == 0:
                    missing.append(f"{topic} [{', '.join(types)}] ({name})")
        return sorted(missing)

    def on_tick(self) -> None:
        missing = self.waiting()
        if missing == self.missing:
            return
        self.missing = missing
        if missing:
            print(f"{self.label}: waiting for {len(missing)} input(s):", file=self.out)
            for item in missing:
                print(f"  {item}", file=self.out)
        else:
            print(f"{self.label}: all inputs have publishers", file=self.out)
        self.out.flush()
