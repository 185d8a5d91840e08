"""Action parsing and the impedance law (pure numpy), and the rotation helpers they rest on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError
from sim.controller import ActionSpec, CartesianImpedance, ImpedanceGains
from sim.exceptions import ActionError
from sim.spatial import apply_delta, compose, inverse, pose, rotation_error


def test_action_is_clipped_per_component():
    parsed = ActionSpec().parse([0.1, -0.2, 0.01, 0.5, -0.1, -1.0, 0.7])
    np.testing.assert_allclose(parsed.delta, [0.06, -0.06, 0.01, 0.25, -0.1, -0.25])
    assert parsed.close_gripper
    assert not ActionSpec().parse(np.zeros(7)).close_gripper


@pytest.mark.parametrize("bad", [np.zeros(6), np.zeros((1, 7)), [0, 0, 0, 0, 0, np.nan, 0], [np.inf] + [0] * 6])
def test_malformed_actions_are_refused_not_clipped(bad):
    with pytest.raises(ActionError):
        ActionSpec().parse(bad)


def test_gains_are_validated():
    with pytest.raises(ParameterError, match="rotational_stiffness"):
        ImpedanceGains(rotational_stiffness=-1.0)


def test_rotation_error_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = Rotation.random(random_state=rng), Rotation.random(random_state=rng)
        np.testing.assert_allclose(rotation_error(a.as_quat(), b.as_quat()), (b * a.inv()).as_rotvec(), atol=1e-9)


def test_pose_algebra():
    rng = np.random.default_rng(1)
    a = pose(rng.normal(size=3), Rotation.random(random_state=rng).as_quat())
    ident = compose(a, inverse(a))
    np.testing.assert_allclose(ident[:3], 0, atol=1e-12)
    assert abs(abs(ident[6]) - 1) < 1e-12
    moved = apply_delta(a, np.array([0.01, 0, 0, 0, 0, 0.1]))
    np.testing.assert_allclose(moved[:3] - a[:3], [0.01, 0, 0])
    np.testing.assert_allclose(rotation_error(a[3:], moved[3:]), [0, 0, 0.1], atol=1e-12)


def test_impedance_pulls_towards_the_target_with_fmb_gains():
    ctrl = CartesianImpedance()
    jac = np.hstack([np.eye(6), np.zeros((6, 1))])  # a toy arm whose joints move the TCP directly
    tcp = pose([0.5, 0.0, 0.3], [1.0, 0.0, 0.0, 0.0])
    target = tcp.copy()
    target[0] += 0.002  # 2 mm ahead in x: inside the 7 mm clip
    tau = ctrl.torques(tcp, target, jac, np.zeros(7), np.zeros(7), np.zeros(7), np.zeros(7))
    np.testing.assert_allclose(tau[:6], [2000 * 0.002, 0, 0, 0, 0, 0], atol=1e-9)
    target[0] += 0.1  # far away: the error is clipped at 7 mm -> 14 N
    tau = ctrl.torques(tcp, target, jac, np.zeros(7), np.zeros(7), np.zeros(7), np.zeros(7))
    assert tau[0] == pytest.approx(2000 * 0.007)
    # Damping opposes velocity: 89 N s/m.
    tau = ctrl.torques(tcp, tcp, jac, np.zeros(7), np.array([0.1, 0, 0, 0, 0, 0, 0]), np.zeros(7), np.zeros(7))
    assert tau[0] == pytest.approx(-8.9)
    # Rotation about z by 0.01 rad -> 150 * 0.01 N m, clipped at 0.04 rad.
    target = pose(tcp[:3], (Rotation.from_rotvec([0, 0, 0.01]) * Rotation.from_quat(tcp[3:])).as_quat())
    tau = ctrl.torques(tcp, target, jac, np.zeros(7), np.zeros(7), np.zeros(7), np.zeros(7))
    assert tau[5] == pytest.approx(1.5, rel=1e-6)
