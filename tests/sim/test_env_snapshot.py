"""FmbEnv.snapshot/restore: the steps after a restore repeat the steps after the snapshot exactly."""

import numpy as np
import pytest

from sim.env import make_env
from sim.exceptions import ActionError
from sim.objects import ObjectPool


def _run(env, actions):
    rows = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        rows.append((obs, info["progress"], env.steps))
    return rows


def test_restore_gives_identical_observations():
    env = make_env(
        "insert",
        objects=ObjectPool.fmb(families=("round",)),
        cameras=("side_1", "wrist"),
        image_size=(32, 32),
        point_cloud=128,
    )
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(2):
        env.step(np.r_[rng.uniform(-0.01, 0.01, 6), 1.0])
    snap = env.snapshot()
    before = env.last_observation
    actions = [np.r_[rng.uniform(-0.02, 0.02, 6), 1.0] for _ in range(4)]
    first = _run(env, actions)
    env.restore(snap)
    assert env.steps == 2
    for key, value in before.items():
        np.testing.assert_array_equal(env.last_observation[key], value)
    second = _run(env, actions)
    for (o1, p1, s1), (o2, p2, s2) in zip(first, second):
        assert s1 == s2 and p1 == p2
        for key in o1:  # includes the fused cloud, whose point draws come from the env's generator
            np.testing.assert_array_equal(o1[key], o2[key], err_msg=key)
    # A different action after the restore gives a different state (the snapshot is not a no-op).
    env.restore(snap)
    other = _run(env, [np.r_[0.03, 0, 0, 0, 0, 0, 1.0]])
    assert not np.allclose(other[0][0]["tcp_pose"], first[0][0]["tcp_pose"])
    env.reset(seed=4)
    with pytest.raises(ActionError, match="since its last reset"):
        env.restore(snap)
    env.close()
