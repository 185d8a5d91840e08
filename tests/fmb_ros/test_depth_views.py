"""fmb_ros.depth_views: camera_info as the simulator's camera, and the views taken closest before a cloud
(message types only, no ROS graph)."""

import math

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from fmb_ros import convert  # noqa: E402
from fmb_ros.depth_views import DepthViews, intrinsics  # noqa: E402
from fmb_ros.exceptions import ConversionError  # noqa: E402

POSE = np.array([0.6, -0.5, 0.45, 0.0, 0.0, 0.0, 1.0])  # looking along the base's +z: all that matters here


def test_the_simulators_camera_info_is_its_camera():
    info = convert.camera_info_msg(96, 64, 58.0, "side_1_optical_frame", 0.0)
    camera = intrinsics("side_1", info)
    assert (camera.width, camera.height, camera.shape) == (96, 64, (64, 96))
    assert camera.fovy == pytest.approx(58.0) and camera.crop(np.zeros((64, 96))).shape == (64, 96)
    spec = camera.spec("side_1", POSE)
    assert spec.position == pytest.approx(POSE[:3]) and spec.target == pytest.approx(POSE[:3] + [0, 0, 1])


def test_an_off_centre_principal_point_is_cropped_about_and_projects_as_the_camera_does():
    """A RealSense-like K (cx, cy a pixel or two off the centre): the crop centres the principal point
    to within 0.25 px, so `sim.pointcloud.project` on the crop lands where K puts the point."""
    from sim.pointcloud import project

    info = convert.camera_info_msg(160, 120, 58.0, "side_1_optical_frame", 0.0)
    f = info.k[4]
    info.k[2], info.k[5] = 81.3, 57.9  # centred: 79.5, 59.5
    camera = intrinsics("side_1", info)
    assert camera.cols == slice(4, 160) and camera.rows == slice(0, 117), camera
    rng = np.random.default_rng(0)
    local = np.c_[rng.uniform(-0.2, 0.2, (200, 2)), rng.uniform(0.4, 0.8, 200)]  # in the camera frame
    u, v = f * local[:, 0] / local[:, 2] + info.k[2], f * local[:, 1] / local[:, 2] + info.k[5]  # K, centres at ints
    rows, cols, _ = project(camera.spec("side_1", POSE), POSE, local + POSE[:3], (camera.height, camera.width))
    assert np.abs(cols + camera.cols.start - u).max() <= 0.5 + 0.25  # the pixel holding K's point, to 0.25 px
    assert np.abs(rows + camera.rows.start - v).max() <= 0.5 + 0.25
    assert camera.fovy == pytest.approx(math.degrees(2 * math.atan(0.5 * 117 / f)))


def _info(fx_scale: float = 1.0, cx: float | None = None, fy: float | None = None, d=None):
    info = convert.camera_info_msg(160, 120, 60.0, "side_1_optical_frame", 0.0)
    info.k[0] *= fx_scale
    info.k[2] = info.k[2] if cx is None else cx
    info.k[4] = info.k[4] if fy is None else fy
    info.d = info.d if d is None else d
    return info


@pytest.mark.parametrize(
    "info, message",
    [
        (_info(fx_scale=1.02), r"fx 106\.\d+ != fy 103\.\d+ px \(by 1\.60 px at the image's edge, over 0\.5\)"),
        (_info(d=[0.1, 0.0, 0.0, 0.0, 0.0]), r"distortion plumb_bob \[0\.1, 0, 0, 0, 0\] is not supported"),
        (_info(cx=300.0), "principal point cx 300 px leaves under 16 px about it of 160"),
        (_info(fy=0.0), "camera_info has no intrinsics"),
    ],
)
def test_what_the_simulators_camera_cannot_hold_is_refused_with_the_values(info, message):
    with pytest.raises(ConversionError, match="camera side_1: " + message):
        intrinsics("side_1", info)
    views = DepthViews(["side_1"])
    views.on_info("side_1", info)  # a node's subscription: refused, and said so where views are asked for
    found, why = views.at(1.0, 0.05)
    assert found is None and why.startswith("side_1 camera_info: camera side_1: "), why


def test_views_are_the_ones_taken_closest_before_the_cloud_within_the_tolerance():
    views = DepthViews(["side_1", "side_2"])
    assert views.at(1.0, 0.05) == (None, "side_1: no camera_info; side_2: no camera_info")
    for cam in views.cameras:
        views.on_info(cam, convert.camera_info_msg(32, 24, 58.0, f"{cam}_optical_frame", 0.0))
    for t in (0.9, 0.97, 1.0, 1.1):  # images and poses at 10 Hz; one a little before the cloud at 1.0
        for cam in views.cameras:
            views.on_depth(cam, convert.image_msg(np.full((24, 32), t, np.float32), "", t))
            views.on_pose(cam, convert.pose_stamped_msg(POSE + [t, 0, 0, 0, 0, 0, 0], "panda_link0", t), "panda_link0")
    found, why = views.at(1.0, 0.05)
    assert why == "" and [v[0].name for v in found] == ["side_1", "side_2"]
    spec, pose, rgb, depth = found[0]
    assert depth[0, 0] == pytest.approx(1.0) and pose[0] == pytest.approx(1.6) and rgb is None
    found, _ = views.at(1.05, 0.06)  # closest before, not nearest: 1.0, not 1.1
    assert found[0][3][0, 0] == pytest.approx(1.0)
    assert views.at(0.99, 0.03)[0][0][3][0, 0] == pytest.approx(0.97)  # and 0.9 too old
    found, why = views.at(1.5, 0.05)
    assert found is None and why.startswith("side_1: no depth image in the 0.05 s before the cloud (nearest -0.400 s)")
    views.on_pose("side_2", convert.pose_stamped_msg(POSE, "side_2_optical_frame", 1.1), "panda_link0")
    assert views.at(1.0, 0.05)[1] == "side_2 pose: in frame 'side_2_optical_frame', expected 'panda_link0'"
    views.on_depth("side_1", convert.image_msg(np.zeros((4, 4), np.float32), "", 1.15))  # not the camera_info's size
    assert views.at(1.15, 0.1)[1].startswith("side_1: image 4x4 px, camera_info 32x24; side_2 pose: in frame")
