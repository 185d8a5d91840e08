"""A real arm: the skill server for one skill, on the robot's driver topics (params/robot.yaml).

    ros2 launch fmb_ros robot.launch.py skill:=grasp

No simulator is started. The parameter file remaps every topic to the driver's names (check them on
your robot) and tightens the safety limits; the skill needs a trained policy (`checkpoint`).
Gripper commands go to `gripper_command_topic` as an opening [m]; franka_gripper's actions need an
adapter node that is not written yet.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    params = os.path.join(get_package_share_directory("fmb_ros"), "launch", "params", "robot.yaml")
    skill = LaunchConfiguration("skill")
    return LaunchDescription(
        [
            DeclareLaunchArgument("skill", default_value="grasp", description="skill to serve"),
            Node(
                package="fmb_ros",
                executable="fmb_skill_server",
                name=[skill, "_skill"],
                parameters=[params, {"skill": skill}],
                output="screen",
            ),
        ]
    )
