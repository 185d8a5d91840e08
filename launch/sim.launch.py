"""Simulated robot + a skill server per skill (+ perception, + the task executor):

    ros2 launch fmb_ros sim.launch.py task:=insert
    ros2 launch fmb_ros sim.launch.py task:=vertical_chain perception:=true
    ros2 launch fmb_ros sim.launch.py task:=vertical_chain task_file:=<share>/launch/tasks/vertical_chain.yaml \
        policies:=rotate=runs/chains/diffusion_rotate,insert=runs/chains/diffusion_insert
    ros2 launch fmb_ros sim.launch.py task:=horizontal_chain perception:=true \
        task_file:=<share>/launch/tasks/horizontal_chain.yaml

`skills` (comma-separated) defaults to the task's own skill, or for a chain task to its stages;
`policies` gives skill servers a policy run (SKILL=RUN, comma-separated), the others run the
scripted expert (or their parameter file's `checkpoint`).

Without `ros2 launch` (PyPI has no launch packages), `fmb ros up sim --task insert [--perception]`
starts the same nodes with the same parameter files in one process. With `perception:=true` the
simulator renders its side cameras and publishes the point cloud (`params/perception.yaml`), and
`fmb_perception` estimates the board, hole and peg poses from it (and the fixture's and its pocket's
where the episode facts list the fixture) and the held peg in the hand, which the skill servers read
for a `tcp_goal`'s in-hand pose (`held_peg_topic: /fmb_perception/held_peg`); `task_file:=<yaml>` adds the
task executor (then run it with `ros2 service call /fmb_task_executor/start std_srvs/srv/Trigger`), which
with perception takes its targets from `fmb_perception` and holds a rotate or insert goal until the held
peg's estimate of that stage has arrived (at most `held_peg_wait`, params/sim.yaml).
`teleop:=true` adds fmb_teleop (a joystick drives the arm), `record:=true [store:=<dir>]` fmb_recorder
(`fmb ros up sim --teleop --record --store`).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = os.path.join(get_package_share_directory("fmb_ros"), "launch", "params")
    params = os.path.join(share, "sim.yaml")
    perception_params = os.path.join(share, "perception.yaml")
    task = LaunchConfiguration("task")
    perception = LaunchConfiguration("perception")
    return LaunchDescription(
        [
            DeclareLaunchArgument("task", default_value="grasp", description="sim task and skill to run"),
            DeclareLaunchArgument("perception", default_value="false", description="cameras, cloud and perception"),
            DeclareLaunchArgument("task_file", default_value="", description="task YAML for the executor"),
            Node(
                package="fmb_ros",
                executable="fmb_sim_robot",
                name="fmb_sim_robot",
                parameters=[params, {"task": task}],
                output="screen",
                condition=UnlessCondition(perception),
            ),
            Node(
                package="fmb_ros",
                executable="fmb_sim_robot",
                name="fmb_sim_robot",
                parameters=[params, perception_params, {"task": task}],
                output="screen",
                condition=IfCondition(perception),
            ),
            DeclareLaunchArgument("skills", default_value="", description="skill servers (default: the task's)"),
            DeclareLaunchArgument("policies", default_value="", description="SKILL=RUN,...: learned skills"),
            OpaqueFunction(function=skill_servers, args=[params]),
            Node(
                package="fmb_ros",
                executable="fmb_perception",
                name="fmb_perception",
                parameters=[params, perception_params, {"use_sim_time": True}],
                output="screen",
                condition=IfCondition(perception),
            ),
            OpaqueFunction(function=task_executor, args=[params]),
            DeclareLaunchArgument("teleop", default_value="false", description="fmb_teleop: a joystick drives the arm"),
            DeclareLaunchArgument("record", default_value="false", description="start fmb_recorder"),
            DeclareLaunchArgument("store", default_value="", description="record: the stores' folder (or the file's)"),
            OpaqueFunction(function=demonstrations, args=[params]),
        ]
    )


def task_executor(context, params):
    """With `task_file`, the task executor; with perception it takes targets from fmb_perception and
    waits for its held peg before a rotate or insert goal (`fmb_ros.cli.executor_parameters`, as
    `fmb ros up sim`)."""
    from fmb_ros.cli import executor_parameters

    task_file = LaunchConfiguration("task_file").perform(context)
    if not task_file:
        return []
    perception = LaunchConfiguration("perception").perform(context).lower() in ("true", "1")
    return [
        Node(
            package="fmb_ros",
            executable="fmb_task_executor",
            name="fmb_task_executor",
            parameters=[params, {"task_file": task_file}, executor_parameters(perception, sim_time=True)],
            output="screen",
        )
    ]


def skill_servers(context, params):
    """A skill server per skill of the `skills` argument (default: the task's stages for a chain,
    else the task), each with its `policies` run as its checkpoint when named there; with
    perception each reads fmb_perception's held peg (`held_peg_topic`, as `fmb ros up sim`)."""
    from pathlib import Path

    from fmb_ros.cli import held_peg_topic, planned_approach

    task = LaunchConfiguration("task").perform(context)
    perception = LaunchConfiguration("perception").perform(context).lower() in ("true", "1")
    skills = LaunchConfiguration("skills").perform(context)
    if not skills:
        from sim.tasks import TASKS

        skills = ",".join(getattr(TASKS.get(task), "stages", ())) or task
    checkpoints = {}
    for item in LaunchConfiguration("policies").perform(context).split(","):
        if item:
            skill, _, run = item.partition("=")
            checkpoints[skill] = run
    nodes = []
    for skill in (s for s in skills.split(",") if s):
        held = held_peg_topic(Path(params), skill, perception)  # None: the parameter file sets it
        approach = planned_approach(Path(params), task, skill, checkpoints.get(skill, ""))
        nodes.append(
            Node(
                package="fmb_ros",
                executable="fmb_skill_server",
                name=f"{skill}_skill",
                parameters=[
                    params,
                    {"skill": skill, "use_sim_time": True},
                    *([{"held_peg_topic": held}] if held is not None else []),
                    *([{"checkpoint": checkpoints[skill]}] if skill in checkpoints else []),
                    *([{"approach": True}] if approach else []),
                ],
                output="screen",
            )
        )
    return nodes


def demonstrations(context, params):
    """`teleop:=true`: fmb_teleop; `record:=true`: fmb_recorder, into `store:=` when given (the rule of
    `fmb ros up sim --teleop --record --store`, `fmb_ros.cli.demonstration_nodes`)."""

    def on(arg):
        return LaunchConfiguration(arg).perform(context).lower() in ("true", "1")

    clock = {"use_sim_time": True}
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
