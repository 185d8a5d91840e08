"""RViz markers of a skill (message types only, no ROS graph)."""

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from visualization_msgs.msg import Marker  # noqa: E402

from fmb_ros.markers import candidate_paths, skill_markers, workspace_box  # noqa: E402
from sim.limits import DEFAULT_WORKSPACE  # noqa: E402


def test_workspace_box_has_twelve_edges():
    m = workspace_box(DEFAULT_WORKSPACE.low, DEFAULT_WORKSPACE.high, "panda_link0", 1.0)
    assert m.type == Marker.LINE_LIST and len(m.points) == 24


def test_candidate_paths_start_at_the_tcp_and_follow_the_deltas():
    chunks = np.zeros((3, 4, 7))
    chunks[:, :, 0] = 0.01  # 1 cm forward per step
    chunks[2, :, 2] = 0.01
    tcp = np.array([0.5, 0.0, 0.2, 0, 0, 0, 1.0])
    markers = candidate_paths(chunks, tcp, "panda_link0", 0.0, chosen=1, scores=[0.0, 1.0, 0.5])
    assert [m.id for m in markers] == [0, 1, 2]
    first, last = markers[0].points[0], markers[0].points[-1]
    assert (first.x, first.y, first.z) == pytest.approx((0.5, 0.0, 0.2))
    assert (last.x, last.z) == pytest.approx((0.54, 0.2))
    assert markers[1].color.a == 1.0 and markers[0].color.a < 1.0  # the executed one stands out
    assert markers[1].color.g > markers[0].color.g  # higher score, greener
    with pytest.raises(ValueError, match=r"\(N, T, >=3\)"):
        candidate_paths(np.zeros((4, 7)), tcp, "f", 0.0)


def test_skill_markers_leave_out_what_is_missing():
    out = skill_markers(None, None, (0, 0, 0), (1, 1, 1), "panda_link0", 0.0)
    assert [m.ns for m in out.markers] == ["candidates", "workspace"]  # a clear, then the box
    pose = [0.5, 0, 0.2, 0, 0, 0, 1.0]
    out = skill_markers(pose, pose, (0, 0, 0), (1, 1, 1), "panda_link0", 0.0, (np.zeros((2, 3, 7)), pose, 0, None))
    assert [m.ns for m in out.markers] == ["candidates", "workspace", "goal", "command", "candidates", "candidates"]


def test_gravmap_markers_show_the_subgoal_and_its_low_cost_voxels():
    from fmb_ros.markers import gravmap_markers
    from policies.gravmap.maps import GravMapSpec
    from policies.gravmap.subgoals import Subgoal

    spec = GravMapSpec(grid=8, extent=0.12, rho=0.03)
    goal = np.array([0.5, 0.1, 0.2])
    sphere, cubes = gravmap_markers(Subgoal(goal, 1.0, "pre-grasp"), "panda_link0", 0.0, spec)
    assert (sphere.ns, sphere.type, sphere.text) == ("subgoal", Marker.SPHERE, "pre-grasp")
    assert (sphere.pose.position.x, sphere.pose.position.z) == pytest.approx((0.5, 0.2))
    assert sphere.color.g > sphere.color.r  # open: green
    assert cubes.ns == "gravmap" and cubes.type == Marker.CUBE_LIST and cubes.scale.x == pytest.approx(0.03)
    pts = np.array([(p.x, p.y, p.z) for p in cubes.points])
    dist = np.linalg.norm(pts - goal, axis=1)
    # 3 cm cells centred on the sub-goal: cost d/(d+rho) < 0.5 keeps the 8 cells 2.6 cm away
    assert len(pts) == len(cubes.colors) == 8 and np.all(dist < spec.rho)
    closed, wide = gravmap_markers(Subgoal(goal, 0.0, "grasp"), "panda_link0", 0.0, spec, threshold=0.7)
    assert closed.color.r > closed.color.g  # closed: red
    assert len(wide.points) > 8  # a higher threshold shows more of the map
    wide_d = np.linalg.norm(np.array([(p.x, p.y, p.z) for p in wide.points]) - goal, axis=1)
    green = np.array([c.g for c in wide.colors])
    assert green[wide_d.argmin()] > green[wide_d.argmax()]  # lower cost (nearer), greener
    with pytest.raises(ValueError, match="threshold"):
        gravmap_markers(Subgoal(goal, 0.0, "grasp"), "panda_link0", 0.0, spec, threshold=0.0)


def test_skill_markers_add_the_gravmap_and_faint_unsafe_candidates():
    from policies.gravmap.subgoals import Subgoal

    pose = [0.5, 0, 0.2, 0, 0, 0, 1.0]
    scores = [np.nan, 1.0, 0.0]
    candidates = (np.zeros((3, 2, 7)), pose, 1, scores)
    out = skill_markers(None, None, (0, 0, 0), (1, 1, 1), "f", 0.0, candidates, Subgoal(np.zeros(3), 0.0, "g"))
    assert [m.ns for m in out.markers][-2:] == ["subgoal", "gravmap"]
    dropped, chosen, low = out.markers[2:5]
    assert np.isfinite(dropped.color.r) and dropped.color.a < low.color.a < chosen.color.a
