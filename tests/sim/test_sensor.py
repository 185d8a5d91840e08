"""The depth camera model on rendered (and one analytic) depth images."""

from __future__ import annotations

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from sim.exceptions import UnknownNameError
from sim.scene import CameraSpec
from sim.sensor import SENSORS, SensorModel, make_sensor


@pytest.fixture(scope="module")
def board_view():
    """side_1's exact depth of an insert scene (board, held peg), 128 px."""
    from sim.env import make_env

    env = make_env("insert", cameras=("side_1",), image_size=(128, 128))
    obs, _ = env.reset(seed=0)
    spec = env.config.camera_specs()[0]
    env.close()
    return obs["depth/side_1"].astype(np.float64), spec


def test_depth_noise_grows_with_the_square_of_depth(board_view):
    depth, camera = board_view
    out = SensorModel(depth_noise=0.01).corrupt(depth, camera, np.random.default_rng(0))
    err = (out - depth)[depth > 0]
    z = depth[depth > 0]
    near, far = z < np.quantile(z, 0.3), z > np.quantile(z, 0.7)
    assert z[far].mean() > 1.2 * z[near].mean()
    ratio = err[far].std() / err[near].std()
    expected = np.sqrt(np.mean(z[far] ** 4) / np.mean(z[near] ** 4))
    assert ratio == pytest.approx(expected, rel=0.15)
    assert err[near].std() == pytest.approx(0.01 * np.sqrt(np.mean(z[near] ** 4)), rel=0.15)


def test_edge_pixels_return_nothing(board_view):
    depth, camera = board_view
    out = SensorModel(edge_jump=0.01, edge_width=1).corrupt(depth, camera, np.random.default_rng(0))
    jump = np.zeros(depth.shape, bool)
    dy, dx = np.abs(np.diff(depth, axis=0)) > 0.01, np.abs(np.diff(depth, axis=1)) > 0.01
    jump[1:] |= dy
    jump[:-1] |= dy
    jump[:, 1:] |= dx
    jump[:, :-1] |= dx
    assert jump.sum() > 50  # the board's and the peg's outlines
    assert np.all(out[jump] == 0.0)
    assert np.array_equal(out[~jump], depth[~jump])  # the rest is untouched (no noise asked for)


def _plane_depth(camera: CameraSpec, tilt: float, distance: float = 0.6) -> np.ndarray:
    """(H, W) depth [m] of a plane `distance` ahead on the optical axis, turned by `tilt` [rad]
    about the camera's x axis (its normal `tilt` off the optical axis at the image centre)."""
    h, w = camera.height, camera.width
    f = 0.5 * h / np.tan(np.radians(camera.fovy) / 2)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([(u - w / 2) / f, (v - h / 2) / f, np.ones_like(u)], axis=-1)
    n = np.array([0.0, np.sin(tilt), -np.cos(tilt)])
    return (n @ np.array([0.0, 0.0, distance])) / (rays @ n)


def test_surfaces_at_grazing_angles_return_nothing(board_view):
    _, camera = board_view
    sensor = SensorModel(max_incidence=np.radians(75.0))
    rng = np.random.default_rng(0)
    facing = sensor.corrupt(_plane_depth(camera, np.radians(20.0)), camera, rng)
    assert np.all(facing > 0)
    grazing = sensor.corrupt(_plane_depth(camera, np.radians(85.0)), camera, rng)
    centre = grazing[camera.height // 2 - 5 : camera.height // 2 + 5, camera.width // 2 - 5 : camera.width // 2 + 5]
    assert np.all(centre == 0.0)
    # On the rendered scene: a tighter limit drops more of the table and the walls seen edge-on.
    depth, _ = board_view
    dropped = [np.mean(SensorModel(max_incidence=np.radians(a)).corrupt(depth, camera, rng) == 0) for a in (80, 60)]
    assert dropped[1] > dropped[0] > np.mean(depth == 0)


def test_seeded_sensor_is_reproducible_and_exact_is_unchanged():
    from sim.env import make_env

    def points(**config):
        env = make_env("insert", cameras=("side_1", "side_2"), image_size=(64, 64), point_cloud=2000, **config)
        first = env.reset(seed=3)[0]["points"]
        again = env.reset(seed=3)[0]["points"]
        env.close()
        return first, again

    noisy, noisy_again = points(sensor=SENSORS["default"])
    assert np.array_equal(noisy, noisy_again)
    exact, _ = points(sensor=SENSORS["exact"])
    plain, _ = points()
    assert np.array_equal(exact, plain) and not np.array_equal(exact, noisy)
    assert SENSORS["exact"].exact and not SENSORS["default"].exact


def test_bad_sensor_settings_are_named():
    with pytest.raises(ParameterError, match="depth_noise"):
        SensorModel(depth_noise=-0.001)
    with pytest.raises(ParameterError, match="max_incidence"):
        SensorModel(max_incidence=3.0)
    with pytest.raises(UnknownNameError, match="unknown sensor 'kinect'; known: default, exact"):
        make_sensor("kinect")
    assert make_sensor("default", depth_noise=0.0, edge_jump=None).depth_noise == 0.0
