"""A real arm: the skill server and perception on the robot's driver topics (params/robot.yaml).

    ros2 launch fmb_ros robot.launch.py skill:=grasp

No simulator is started. The parameter file remaps every topic to the driver's and cameras' names
(check them on your robot), tightens the safety limits, names the peg on the table for perception
and selects the output adapters (`command_interface`, `ik_solver`, `gripper_interface`); the skill
needs a trained policy (`checkpoint`). `fmb ros up robot` starts the same nodes from the same file
in one process where `ros2 launch` is missing.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    params = os.path.join(get_package_share_directory("fmb_ros"), "launch", "params", "robot.yaml")
    skill = LaunchConfiguration("skill")
    return LaunchDescription(
        [
            DeclareLaunchArgument("skill", default_value="grasp", description="skill to serve"),
            DeclareLaunchArgument("perception", default_value="true", description="start fmb_perception"),
            DeclareLaunchArgument(
                "cloud_fusion", default_value="false", description="start fmb_cloud_fusion (set its camera_poses)"
            ),
            Node(
                package="fmb_ros",
                executable="fmb_skill_server",
                name=[skill, "_skill"],
                parameters=[params, {"skill": skill}],
                output="screen",
            ),
            Node(
                package="fmb_ros",
                executable="fmb_perception",
                name="fmb_perception",
                parameters=[params],
                output="screen",
                condition=IfCondition(LaunchConfiguration("perception")),
            ),
            Node(
                package="fmb_ros",
                executable="fmb_cloud_fusion",
                name="fmb_cloud_fusion",
                parameters=[params],
                output="screen",
                condition=IfCondition(LaunchConfiguration("cloud_fusion")),
            ),
        ]
    )
