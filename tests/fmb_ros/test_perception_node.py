"""fmb_perception built in-process: bad input is reported in its status and the node stays up."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
pytest.importorskip("open3d", reason="perception needs open3d: pip install -e .[perception]")

from rclpy.parameter import Parameter  # noqa: E402

from fmb_core.errors import ParameterError  # noqa: E402
from fmb_ros import convert  # noqa: E402

pytestmark = pytest.mark.graph


def _node(context, **params):
    from fmb_ros.perception_node import PerceptionNode

    node = PerceptionNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    statuses = []
    node.publish_status = lambda level, message, values: statuses.append((level, message, values))
    return node, statuses


def test_unknown_peg_and_wrong_frame_are_reported_and_the_node_lives_on(context):
    node, statuses = _node(context, peg="peg_cube_XL")
    try:
        assert node.estimator is None and "unknown peg 'peg_cube_XL'" in node.error
        node.on_tick()
        assert statuses[-1][0] == "error" and "unknown peg" in statuses[-1][1]
    finally:
        node.destroy_node()
    node, statuses = _node(context, peg="peg_round_M_long")
    try:
        node.on_tick()
        assert statuses[-1][:2] == ("warn", "waiting for a point cloud")
        cloud = np.zeros((100, 6), np.float32)
        node.on_points(convert.point_cloud_msg(cloud, "camera_link", 1.0))
        node.on_tick()
        assert statuses[-1][0] == "error" and "frame 'camera_link'; expected 'panda_link0'" in statuses[-1][1]
        node.on_points(convert.point_cloud_msg(cloud, "panda_link0", 2.0))
        node.on_tick()  # a cloud with nothing in it: nothing found, said so
        level, message, values = statuses[-1]
        assert level == "warn" and message == "not found: board, peg" and values["board_found"] is False
    finally:
        node.destroy_node()


def test_episode_names_the_peg_when_the_parameter_is_empty(context):
    from std_msgs.msg import String

    node, _ = _node(context)
    try:
        assert node.estimator is None and node.error == ""
        node.on_episode(String(data='{"peg": "peg_star_M_long", "object_keys": ["peg"]}'))
        assert node.peg == "peg_star_M_long" and node.estimator is not None
    finally:
        node.destroy_node()


def test_the_fixture_is_looked_for_when_the_episode_has_one_or_the_parameter_says(context):
    from std_msgs.msg import String

    node, _ = _node(context)
    try:
        node.on_episode(String(data='{"peg": "peg_star_M_long", "object_keys": ["board", "peg", "fixture"]}'))
        assert node.fixture and [m.key for m in node.estimator.models] == ["board", "peg", "fixture"]
        topics = {p.topic_name for p in node.publishers}
        assert {"/fmb_perception/fixture_pose", "/fmb_perception/pocket"} <= topics
    finally:
        node.destroy_node()
    node, _ = _node(context, peg="peg_star_M_long", fixture=True)
    try:
        assert "fixture" in [m.key for m in node.estimator.models]
    finally:
        node.destroy_node()


def test_the_hand_is_filtered_out_of_the_cloud_given_the_measured_tcp_and_fingers(context):
    """A block of points on one finger is a cluster until the node knows where the hand is (its
    measured TCP pose and finger opening): then it is dropped before the estimate (self-filter)."""
    from sensor_msgs.msg import JointState

    rng = np.random.default_rng(0)
    # TCP at (0.5, 0, 0.15) m pointing down (180 deg about x: TCP y -> world -y, z -> world -z)
    tcp = np.array([0.5, 0.0, 0.15, 1.0, 0.0, 0.0, 0.0])
    local = rng.uniform([-0.008, 0.024, -0.045], [0.008, 0.040, -0.005], (3000, 3))  # a finger, TCP frame
    world = tcp[:3] + local * [1.0, -1.0, -1.0]
    cloud = np.hstack([world, np.zeros((len(world), 3))]).astype(np.float32)
    node, statuses = _node(context, peg="peg_round_M_long")
    try:
        node.on_points(convert.point_cloud_msg(cloud, "panda_link0", 1.0))
        node.on_tick()
        assert statuses[-1][2]["clusters"] >= 1  # the finger, taken for an object's cluster
        node.on_tcp_pose(convert.pose_stamped_msg(tcp, "panda_link0", 1.0))
        node.on_gripper(JointState(position=[0.02, 0.02]))  # 40 mm open
        node.on_points(convert.point_cloud_msg(cloud, "panda_link0", 2.0))
        node.on_tick()
        assert statuses[-1][2]["clusters"] == 0
    finally:
        node.destroy_node()


def test_bad_parameters_are_named(context):
    from fmb_ros.perception_node import PerceptionNode

    with pytest.raises(ParameterError, match="rate"):
        PerceptionNode(context=context, parameter_overrides=[Parameter("rate", value=0.0), Parameter("peg", value="x")])
    with pytest.raises(ParameterError, match="set `peg` or `episode_topic`"):
        PerceptionNode(context=context, parameter_overrides=[Parameter("episode_topic", value="")])
    with pytest.raises(ParameterError, match="crop_low must have 3 numbers"):
        PerceptionNode(context=context, parameter_overrides=[Parameter("crop_low", value=[0.0, 1.0])])


def test_executor_takes_object_targets_from_perception(context):
    """With perception_namespace, `target: {object: hole}` resolves to perception's estimate, which
    wins over the simulator's ground truth; poses in another frame are ignored."""
    from std_msgs.msg import String

    from fmb_ros.task_executor import TaskExecutorNode

    overrides = [Parameter("perception_namespace", value="/fmb_perception")]
    node = TaskExecutorNode(context=context, parameter_overrides=overrides)
    try:
        node.on_episode(String(data='{"object_keys": ["board", "peg"]}'))
        node.on_object_poses(convert.pose_array_msg([[0.5, -0.2, 0, 0, 0, 0, 1], [0.5, 0.1, 0.1, 0, 0, 0, 1]], "b", 0))
        assert isinstance(node.objects["peg"], np.ndarray) and "hole" not in node.objects
        node._on_perceived("hole")(convert.pose_stamped_msg([0.45, -0.25, 0.05, 0, 0, 0, 1], "panda_link0", 1.0))
        node._on_perceived("peg")(convert.pose_stamped_msg([0.51, 0.11, 0.1, 0, 0, 0, 1], "panda_link0", 1.0))
        node._on_perceived("board")(convert.pose_stamped_msg([9.0, 9.0, 0, 0, 0, 0, 1], "camera_link", 1.0))
        node.on_object_poses(convert.pose_array_msg([[0.5, -0.2, 0, 0, 0, 0, 1], [0.5, 0.1, 0.1, 0, 0, 0, 1]], "b", 0))
        assert node.objects["hole"][:3].tolist() == [0.45, -0.25, 0.05]
        assert node.objects["peg"][:2].tolist() == pytest.approx([0.51, 0.11])  # perception wins
        assert node.objects["board"][:2].tolist() == [0.5, -0.2]  # the other frame was ignored
        topics = {s.topic_name for s in node.subscriptions}
        assert {"/fmb_perception/board_pose", "/fmb_perception/peg_pose", "/fmb_perception/target_hole"} <= topics
    finally:
        node.destroy_node()
