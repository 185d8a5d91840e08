"""Feature preparation and normalisation (numpy only)."""

import numpy as np
import pytest

from fmb.errors import ParameterError
from policies.features import MinMaxNormalizer, local_points, rot6d, state_vector
from tests.policies.conftest import tiny


def test_normalizer_round_trip_and_range():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(500, 4)) * [1, 10, 0.01, 0]  # the last dimension never varies
    data[:, 3] = 2.5
    norm = MinMaxNormalizer.fit(data)
    y = norm.normalize(data)
    assert y[:, :3].min() == pytest.approx(-1, abs=1e-5) and y[:, :3].max() == pytest.approx(1, abs=1e-5)
    assert np.all(y[:, 3] == 0)
    np.testing.assert_allclose(norm.unnormalize(y), data, rtol=1e-5, atol=1e-5)
    again = MinMaxNormalizer.from_dict(norm.to_dict())
    np.testing.assert_allclose(again.normalize(data), y)


def test_rot6d_ignores_quaternion_sign():
    q = np.array([[0.1, 0.9, -0.2, 0.3]])
    q /= np.linalg.norm(q)
    np.testing.assert_allclose(rot6d(q), rot6d(-q))
    np.testing.assert_allclose(rot6d(np.array([0, 0, 0, 1.0])), [1, 0, 0, 0, 1, 0])


def test_state_vector_names_a_missing_key():
    obs = {"tcp_pose": np.zeros((3, 7)) + [0, 0, 0, 0, 0, 0, 1], "gripper": np.zeros((3, 1))}
    assert state_vector(obs, ("tcp_pose", "gripper")).shape == (3, 10)
    with pytest.raises(ParameterError, match="'wrench'.*gripper, tcp_pose"):
        state_vector(obs, ("wrench",))


def test_local_points_crop_around_the_tcp():
    config = tiny(points=64, crop_low=(-0.1, -0.1, -0.1), crop_high=(0.1, 0.1, 0.1))
    rng = np.random.default_rng(0)
    tcp = np.array([0.5, 0.0, 0.3])
    near = np.c_[tcp + rng.uniform(-0.09, 0.09, (20, 3)), np.ones((20, 3))]
    far = np.c_[tcp + [0.5, 0, 0] + rng.uniform(-0.05, 0.05, (200, 3)), np.zeros((200, 3))]
    pts = local_points(np.r_[near, far], tcp, config, rng)
    assert pts.shape == (64, 6)
    assert np.all(np.abs(pts[:, :3]) <= 1) and np.all(pts[:, 3:] == 1.0)  # only the white near points
    assert np.all(local_points(far, tcp, config, rng) == 0)  # nothing in the box: zeros
