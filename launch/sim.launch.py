"""Simulated robot + one skill server: `ros2 launch fmb_ros sim.launch.py task:=insert`.

Without `ros2 launch` (PyPI has no launch packages), `fmb ros up sim --task insert` starts the same
nodes with the same parameter file in one process.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    params = os.path.join(get_package_share_directory("fmb_ros"), "launch", "params", "sim.yaml")
    task = LaunchConfiguration("task")
    return LaunchDescription(
        [
            DeclareLaunchArgument("task", default_value="grasp", description="sim task and skill to run"),
            Node(
                package="fmb_ros",
                executable="fmb_sim_robot",
                name="fmb_sim_robot",
                parameters=[params, {"task": task}],
                output="screen",
            ),
            Node(
                package="fmb_ros",
                executable="fmb_skill_server",
                name=[task, "_skill"],
                parameters=[params, {"skill": task, "use_sim_time": True}],
                output="screen",
            ),
        ]
    )
