"""JointTrajectoryPlan sampling, and the simulated robot following a JointTrajectory (in-process)."""

import numpy as np
import pytest

from fmb_ros.exceptions import ConversionError
from fmb_ros.trajectory import JointTrajectoryPlan
from tests.fmb_ros.dds import ros_domain_id

pytestmark = pytest.mark.graph


def test_sampling_interpolates_from_the_current_joints_and_holds_the_end():
    plan = JointTrajectoryPlan(10.0, [1.0, 2.0], [[1.0, 0.0], [1.0, 2.0]], current=[0.0, 0.0])
    assert np.allclose(plan.sample(9.0), [0.0, 0.0])
    assert np.allclose(plan.sample(10.5), [0.5, 0.0])
    assert np.allclose(plan.sample(11.5), [1.0, 1.0])
    assert np.allclose(plan.sample(99.0), [1.0, 2.0]) and plan.end_time == 12.0


@pytest.mark.parametrize(
    "times, positions, match",
    [
        ([], np.zeros((0, 2)), "no points"),
        ([1.0, 0.5], [[0, 0], [1, 1]], "must increase"),
        ([1.0], [[0, 0, 0]], "must be"),
        ([1.0], [[np.nan, 0]], "NaN"),
    ],
)
def test_bad_trajectories_are_refused(times, positions, match):
    with pytest.raises(ConversionError, match=match):
        JointTrajectoryPlan(0.0, times, positions, current=[0.0, 0.0])


def test_sim_robot_follows_a_joint_trajectory():
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from fmb_ros.sim_robot import SimRobotNode
    from sim.spatial import rotation_error

    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id())
    node = SimRobotNode(context=ctx)
    try:
        q0 = node.env.last_observation["q"].astype(float)
        goal = q0.copy()
        goal[0] += 0.2
        names = list(reversed(node.arm_joints))  # any order
        msg = JointTrajectory(joint_names=names)
        msg.points = [JointTrajectoryPoint(positions=list(goal[::-1]), time_from_start=Duration(sec=1))]
        node.on_joint_trajectory(msg)
        for _ in range(20):  # 2 s simulated
            node.on_tick()
        # The TCP reaches the last waypoint's pose; the joints themselves may differ in the null space
        # (the arm is redundant and the impedance controller only tracks the TCP).
        expected = node.env.backend.forward_kinematics(goal)[0]
        tcp = node.env.last_observation["tcp_pose"].astype(float)
        assert np.linalg.norm(tcp[:3] - expected[:3]) < 0.005
        assert np.linalg.norm(rotation_error(tcp[3:], expected[3:])) < 0.03
        bad = JointTrajectory(joint_names=["panda_joint1"], points=msg.points)
        node.on_joint_trajectory(bad)  # warned about and ignored
        assert node.trajectory is None
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
