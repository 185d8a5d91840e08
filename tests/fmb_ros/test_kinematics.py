"""Inverse kinematics of the skill node: the own damped least squares and mink, on the Panda model."""

from __future__ import annotations

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from fmb_ros.kinematics import make_kinematics
from sim import panda
from sim.spatial import rotation_error

pytest.importorskip("mink", reason="the mink solver needs the [ik] extra: pip install -e .[ik]")


@pytest.fixture(scope="module")
def mink_ik():
    k = make_kinematics("mink")
    yield k
    k.close()


def _targets(k):
    """TCP poses around the rest posture's: moves of a control step and of a whole reach."""
    home, _ = k.forward(panda.HOME_Q)
    moves = [[0.05, 0.0, 0.0], [0.0, 0.12, -0.1], [0.15, -0.2, -0.25], [-0.1, 0.25, 0.05]]
    out = []
    for dx in moves:
        t = home.copy()
        t[:3] += dx
        out.append(t)
    return out


def test_mink_reaches_poses_within_the_joint_limits(mink_ik):
    lower, upper = panda.arm_joint_limits()
    for target in _targets(mink_ik):
        q = mink_ik.inverse(target, panda.HOME_Q, margin=0.05)
        assert q is not None, target
        assert np.all(q >= lower + 0.05 - 1e-6) and np.all(q <= upper - 0.05 + 1e-6)
        reached, _ = mink_ik.forward(q)
        assert np.linalg.norm(reached[:3] - target[:3]) < 1e-3
        assert np.linalg.norm(rotation_error(target[3:], reached[3:])) < 1e-2


def test_mink_keeps_joint_limits_as_constraints(mink_ik):
    """A pose reachable only past joint 7's limit: mink never leaves the limits; it returns None, or a
    solution inside them."""
    lower, upper = panda.arm_joint_limits()
    seed = np.array(panda.HOME_Q, float)
    seed[6] = upper[6] - 0.01
    home, _ = mink_ik.forward(seed)
    from scipy.spatial.transform import Rotation

    turned = home.copy()
    turned[3:] = (Rotation.from_quat(home[3:]) * Rotation.from_euler("z", 0.6)).as_quat()  # 0.6 rad further
    q = mink_ik.inverse(turned, seed, margin=0.0)
    if q is not None:
        assert np.all(q >= lower - 1e-6) and np.all(q <= upper + 1e-6)
        assert np.linalg.norm(rotation_error(turned[3:], mink_ik.forward(q)[0][3:])) < 1e-2
    q = mink_ik.inverse(turned, seed, margin=0.3)
    assert q is None or (np.all(q >= lower + 0.3 - 1e-6) and np.all(q <= upper - 0.3 + 1e-6))


def test_out_of_reach_and_malformed_targets_give_none(mink_ik):
    assert mink_ik.inverse([1.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0], panda.HOME_Q) is None
    assert mink_ik.inverse([np.nan, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0], panda.HOME_Q) is None


def test_mink_and_dls_reach_the_same_tcp(mink_ik):
    dls = make_kinematics("dls")
    try:
        for target in _targets(mink_ik)[:2]:
            a = mink_ik.forward(mink_ik.inverse(target, panda.HOME_Q, margin=0.0))[0]
            b = dls.forward(dls.inverse(target, panda.HOME_Q, margin=0.0))[0]
            assert np.linalg.norm(a[:3] - b[:3]) < 1e-3
    finally:
        dls.close()


def test_unknown_solver_is_named():
    with pytest.raises(ParameterError, match="unknown ik_solver 'ikfast'; known: dls, mink"):
        make_kinematics("ikfast")
