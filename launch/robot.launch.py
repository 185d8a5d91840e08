"""A real arm: the skill server and perception on the robot's driver topics (params/robot.yaml).

    ros2 launch fmb_ros robot.launch.py skill:=grasp

No simulator is started. The parameter file remaps every topic to the driver's and cameras' names
(check them on your robot), tightens the safety limits, names the peg on the table for perception
and selects the output adapters (`command_interface`, `ik_solver`, `gripper_interface`); the skill
needs a trained policy (`checkpoint`). With `perception:=true` the skill server reads perception's
estimate of the held peg in the hand (`held_peg_topic: /fmb_perception/held_peg`, unless the parameter
file sets it), for a `tcp_goal`'s in-hand pose; without, none. `fmb ros up robot` starts the same
nodes from the same file in one process where `ros2 launch` is missing.
`teleop:=true` adds fmb_teleop (a joystick drives the arm), `record:=true [store:=<dir>]` fmb_recorder
(`fmb ros up robot --teleop --record --store`).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    params = os.path.join(get_package_share_directory("fmb_ros"), "launch", "params", "robot.yaml")
    return LaunchDescription(
        [
            DeclareLaunchArgument("skill", default_value="grasp", description="skill to serve"),
            DeclareLaunchArgument("perception", default_value="true", description="start fmb_perception"),
            DeclareLaunchArgument(
                "cloud_fusion", default_value="false", description="start fmb_cloud_fusion (set its camera_poses)"
            ),
            OpaqueFunction(function=skill_server, args=[params]),
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
            DeclareLaunchArgument("teleop", default_value="false", description="fmb_teleop: a joystick drives the arm"),
            DeclareLaunchArgument("record", default_value="false", description="start fmb_recorder"),
            DeclareLaunchArgument("store", default_value="", description="record: the stores' folder (or the file's)"),
            OpaqueFunction(function=demonstrations, args=[params]),
        ]
    )


def skill_server(context, params):
    """The `skill` argument's server; with perception it reads fmb_perception's held peg (the rule
    of `fmb ros up robot`, `fmb_ros.cli.held_peg_topic`)."""
    from pathlib import Path

    from fmb_ros.cli import held_peg_topic

    skill = LaunchConfiguration("skill").perform(context)
    perception = LaunchConfiguration("perception").perform(context).lower() in ("true", "1")
    held = held_peg_topic(Path(params), skill, perception)  # None: the parameter file sets it
    return [
        Node(
            package="fmb_ros",
            executable="fmb_skill_server",
            name=f"{skill}_skill",
            parameters=[params, {"skill": skill}, *([{"held_peg_topic": held}] if held is not None else [])],
            output="screen",
        )
    ]


def demonstrations(context, params):
    """`teleop:=true`: fmb_teleop; `record:=true`: fmb_recorder, into `store:=` when given (the rule of
    `fmb ros up robot --teleop --record --store`, `fmb_ros.cli.demonstration_nodes`)."""

    def on(arg):
        return LaunchConfiguration(arg).perform(context).lower() in ("true", "1")

    clock = {"use_sim_time": False}
    store = LaunchConfiguration("store").perform(context)
    nodes = []
    if on("teleop"):
        nodes.append(
            Node(
                package="fmb_ros",
                executable="fmb_teleop",
                name="fmb_teleop",
                parameters=[params, clock],
                output="screen",
            )
        )
    if on("record"):
        extra = [{"store": store}] if store else []
        nodes.append(
            Node(
                package="fmb_ros",
                executable="fmb_recorder",
                name="fmb_recorder",
                parameters=[params, clock, *extra],
                output="screen",
            )
        )
    return nodes
