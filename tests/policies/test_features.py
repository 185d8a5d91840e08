"""Feature preparation and normalisation (numpy only)."""

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from policies.common.features import MinMaxNormalizer, local_points, rot6d, state_vector
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


def test_goal_features_are_relative_to_the_tcp():
    from scipy.spatial.transform import Rotation

    from policies.common.features import goal_features

    tcp = np.r_[0.5, 0.1, 0.3, Rotation.from_euler("xyz", [np.pi, 0, 0.4]).as_quat()]
    goal = np.r_[0.52, 0.08, 0.05, Rotation.from_euler("xyz", [0, 0, 0.1]).as_quat()]
    f = goal_features(goal, tcp)
    np.testing.assert_allclose(f[:3], [0.02, -0.02, -0.25], atol=1e-12)
    rel = Rotation.from_quat(tcp[3:]).inv() * Rotation.from_quat(goal[3:])
    np.testing.assert_allclose(f[3:], rel.as_matrix()[:, :2].T.ravel(), atol=1e-12)
    # the same scene turned about the base z axis: same relative rotation, offset turned with it
    turn = Rotation.from_euler("z", 0.7)
    f2 = goal_features(
        np.r_[turn.apply(goal[:3]), (turn * Rotation.from_quat(goal[3:])).as_quat()],
        np.r_[turn.apply(tcp[:3]), (turn * Rotation.from_quat(tcp[3:])).as_quat()],
    )
    np.testing.assert_allclose(f2[3:], f[3:], atol=1e-9)
    np.testing.assert_allclose(f2[:3], turn.apply(f[:3]), atol=1e-12)
    with pytest.raises(ParameterError, match="goal-conditioned"):
        state_vector({"tcp_pose": tcp}, ("goal",))
