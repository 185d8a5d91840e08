"""Training windows over a real episode store: horizons, padding at episode edges, features."""

import dataclasses

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from policies.common.dataset import SequenceDataset, fit_config_to_data
from tests.policies.conftest import tiny


def test_windows_pad_episode_edges_with_zero_motion(state_store):
    config, _ = fit_config_to_data(tiny(), [state_store])
    assert config.points == 0 and config.skills == ("insert",)  # no clouds recorded: no point encoder
    ds = SequenceDataset([state_store], config, progress=False)
    raw = state_store.load(0).data
    t_len = len(raw["action"])
    assert ds.lengths[0] == t_len and ds.zero_motion_padding

    first = ds.window(0, 0)
    assert first["state"].shape == (1, 2, ds.shapes["state"][0]) and first["action"].shape == (1, 8, 7)
    np.testing.assert_array_equal(first["state"][0, 0], first["state"][0, 1])  # repeats the first observation
    actions = ds.action_normalizer.unnormalize(first["action"][0])
    np.testing.assert_allclose(actions[0, :6], 0, atol=1e-6)  # before the start: zero motion ...
    assert actions[0, 6] == pytest.approx(raw["action"][0, 6], abs=1e-5)  # ... gripper as at the start
    np.testing.assert_allclose(actions[1:], raw["action"][:7], atol=1e-5)

    last = ds.action_normalizer.unnormalize(ds.window(0, t_len - 1)["action"][0])
    np.testing.assert_allclose(last[0:2], raw["action"][t_len - 2 :], atol=1e-5)
    np.testing.assert_allclose(last[2:, :6], 0, atol=1e-6)  # after the end: the robot waits
    with pytest.raises(ParameterError, match="outside episode"):
        ds.window(0, t_len)


def test_batches_are_normalised_and_seeded(state_store):
    config, _ = fit_config_to_data(tiny(), [state_store])
    ds = SequenceDataset([state_store], config, progress=False)
    a = ds.sample(32, np.random.default_rng(3))
    b = ds.sample(32, np.random.default_rng(3))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert np.abs(a["action"]).max() <= 1 + 1e-5 and np.abs(a["state"]).max() <= 1 + 1e-5


@pytest.mark.slow
def test_point_cloud_features(cloud_store):
    config, notes = fit_config_to_data(tiny(), [cloud_store])
    assert config.points == 32 and notes == []
    ds = SequenceDataset([cloud_store], config, progress=False)
    batch = ds.sample(4, np.random.default_rng(0))
    assert batch["points"].shape == (4, 2, 32, 6) and np.abs(batch["points"]).max() <= 1.0
    assert np.abs(batch["points"]).sum() > 0  # the crop around the TCP holds board and peg points


def test_data_without_the_requested_inputs_is_refused(state_store):
    with pytest.raises(ParameterError, match="rgb/wrist"):
        fit_config_to_data(dataclasses.replace(tiny(), image_key="rgb/wrist"), [state_store])


def test_goal_conditioning_reads_the_task_target(state_store):
    config, notes = fit_config_to_data(dataclasses.replace(tiny(), goal="hole"), [state_store])
    assert config.state_keys[-1] == "goal"
    ds = SequenceDataset([state_store], config, progress=False)
    raw = state_store.load(0)
    hole = np.asarray(raw.meta["targets"]["hole"])
    state = ds.state_normalizer.unnormalize(ds.window(0, 3)["state"][0, -1])
    np.testing.assert_allclose(state[-9:-6], hole[:3] - raw.data["obs/tcp_pose"][3, :3], atol=1e-5)
    with pytest.raises(ParameterError, match="--goal fixture: .* no target .fixture. \\(hole, peg_goal, tcp_goal\\)"):
        fit_config_to_data(dataclasses.replace(tiny(), goal="fixture"), [state_store])
