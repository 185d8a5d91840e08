"""GravMap: keyposes of scripted demonstrations, map values, the map-conditioned diffusion model
(training, save/load, guidance), run-time sub-goals and backward compatibility."""

import numpy as np
import pytest
import torch

from fmb_core.errors import ParameterError
from policies.common.dataset import SequenceDataset, fit_config_to_data
from policies.config import PolicyConfig
from policies.factory import build_model
from policies.gravmap.keyposes import KeyposeConfig, discover_keyposes, episode_subgoals
from policies.gravmap.maps import GravMapSpec, build_gravmap
from policies.gravmap.subgoals import SubgoalTracker, privileged_subgoals
from policies.runtime.policy import Policy
from policies.runtime.runner import PolicyRunner
from policies.train import train
from sim.env import make_env
from sim.experts import make_expert
from sim.rollout import run_episode
from tests.policies.conftest import tiny, tiny_training

pytestmark = pytest.mark.train


class PhaseRecorder:
    """The scripted expert, with its phase (what the expert itself knows) recorded every step."""

    def __init__(self, expert, phase):
        self.expert, self.phase, self.phases = expert, phase, []

    def reset(self, env):
        self.expert.reset(env)
        self.phases = []

    def act(self, env):
        action = self.expert.act(env)
        self.phases.append(self.phase(self.expert))
        return action


def _demo(task, phase, seed):
    env = make_env(task)
    from sim.objects import ObjectPool

    env.task.pool = ObjectPool.fmb(families=("rectangle",))
    expert = make_expert(task, noise=1.0)
    expert.rng = np.random.default_rng(seed)
    recorder = PhaseRecorder(expert, phase)
    result = run_episode(env, recorder, seed, record=True)
    assert result.success
    d = result.data
    kps = discover_keyposes(d["obs/tcp_pose"], d["action"], d["obs/tcp_vel"], d["obs/wrench"], d["obs/gripper"])
    return env, d, recorder.phases, kps


@pytest.mark.parametrize("seed", [0, 1])
def test_grasp_keyposes_are_pre_grasp_close_and_lift(seed):
    env, d, phases, kps = _demo("grasp", lambda e: e.phase, seed)
    assert [k.cue for k in kps] == ["still", "gripper", "end"], kps
    # the expert's own phase switches: approach -> descend (at the pre-grasp), descend -> close
    descend = phases.index("descend")
    close = phases.index("close")
    assert abs(kps[0].step - descend) <= 2 and kps[0].openness == 1.0
    assert abs(kps[1].step - close) <= 1 and kps[1].openness == 0.0
    grasp = np.asarray(env.episode.info["targets"]["grasp"])[:3]  # where the fingers close
    assert np.linalg.norm(kps[1].position - grasp) < 0.01
    assert kps[0].position[2] - grasp[2] > 0.05  # the pre-grasp is 6-10 cm above it
    assert kps[2].step == len(d["action"]) - 1 and kps[2].position[2] > grasp[2] + 0.04


@pytest.mark.parametrize("seed", [0, 1])
def test_insert_keyposes_are_above_the_hole_and_in_it(seed):
    env, d, phases, kps = _demo("insert", lambda e: e.descending, seed)
    assert [k.cue for k in kps] == ["still", "end"], kps
    first_descent = phases.index(True)  # the expert aligned above the hole and starts down
    assert abs(kps[0].step - first_descent) <= 1
    subgoals = privileged_subgoals_at_start(env, seed)
    assert np.linalg.norm(kps[0].position - subgoals[0].position) < 0.005  # hover above the hole
    # inserted: on the hole axis; the demonstration ends at the success depth (20 mm), one step
    # before the expert's target (25 mm deep), so the last recorded TCP is up to 15 mm above it
    inserted = kps[1].position - subgoals[1].position
    assert np.linalg.norm(inserted[:2]) < 0.003 and 0.0 <= inserted[2] < 0.015
    assert all(k.openness == 0.0 for k in kps)
    table = episode_subgoals(kps, len(d["action"]))
    assert np.allclose(table[0, :3], kps[0].position) and np.allclose(table[kps[0].step, :3], kps[1].position)


def privileged_subgoals_at_start(env, seed):
    env.reset(seed=seed)
    return privileged_subgoals(env)


def test_keypose_thresholds_and_bad_input():
    still = np.zeros((10, 7))
    still[:, 6] = 1.0
    kps = discover_keyposes(still)  # a demonstration that never moves: only its end
    assert [k.step for k in kps] == [9]
    with pytest.raises(ParameterError, match="tcp_pose"):
        discover_keyposes(np.zeros((5, 3)))
    with pytest.raises(ParameterError, match="action has 4 steps"):
        discover_keyposes(still, action=np.zeros((4, 7)))
    with pytest.raises(ParameterError, match="still_speed"):
        KeyposeConfig(still_speed=-1.0)


def test_gravmap_is_minimal_at_the_subgoal_and_rises_with_distance():
    spec = GravMapSpec(grid=16, extent=0.2, rho=0.03, sigma=0.02)
    centre = np.array([0.5, 0.0, 0.1])
    goal = centre + np.array([0.03, 0.04, 0.02])
    m = build_gravmap(goal, 0.0, centre=centre, spec=spec)
    flat = m.cost.reshape(-1)
    nearest = np.argmin(np.linalg.norm(m.points.reshape(-1, 3) - goal, axis=1))
    assert np.argmin(flat) == nearest and flat.min() < 0.3  # voxels are 25 mm apart
    on_voxel = build_gravmap(m.points[5, 9, 7], 0.0, centre=centre, spec=spec)
    assert on_voxel.cost[5, 9, 7] < 1e-3 and np.isclose(on_voxel.cost.reshape(-1)[0], 1.0, atol=0.2)
    d = np.linalg.norm(m.points.reshape(-1, 3) - goal, axis=1)
    order = np.argsort(d)
    assert np.all(np.diff(flat[order]) >= -1e-12)  # monotone in distance
    assert m.gripper.reshape(-1)[nearest] < -0.5 and abs(m.gripper).min() < 1e-3  # closed near, neutral far
    assert build_gravmap(goal, 1.0, goal, spec).gripper.max() > 0.5  # open sub-goal: positive
    with pytest.raises(ParameterError, match="openness"):
        build_gravmap(goal, 2.0, goal, spec)


@pytest.fixture(scope="module")
def gravmap_run(state_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gravmap"
    train([state_store.root], out, tiny(conditioners=("gravmap",)), tiny_training(), progress=False, log=lambda m: None)
    return out


def test_gravmap_model_trains_on_a_fixed_batch(state_store):
    torch.manual_seed(0)
    config, _ = fit_config_to_data(tiny(conditioners=("gravmap",)), [state_store])
    ds = SequenceDataset([state_store], config, progress=False)
    assert ds.shapes["subgoal"] == (4,)
    model = build_model(config, ds.shapes)
    batch = {k: torch.as_tensor(v) for k, v in ds.sample(16, np.random.default_rng(0)).items()}
    assert batch["subgoal"].shape == (16, 4) and torch.all(batch["subgoal"][:, 3] == 0)  # closed hand
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        torch.manual_seed(1)
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    # the map token reaches position and gripper channels only, never rotation
    model.eval()
    cond = model.encoder(batch)
    other = cond.clone()
    other[:, model.encoder.obs_dim :] = torch.randn_like(other[:, model.encoder.obs_dim :])
    xt, t = torch.randn_like(batch["action"]), torch.full((16,), 5)
    diff = (model.denoise(xt, t, cond) - model.denoise(xt, t, other)).abs().amax(dim=(0, 1))
    assert torch.all(diff[3:6] == 0) and diff[:3].min() > 0


@pytest.mark.slow
def test_gravmap_policy_reloads_identically_and_acts_in_sim(gravmap_run, state_store):
    ep = state_store.load(0).data
    hist = [{k[4:]: v[i] for k, v in ep.items() if k.startswith("obs/")} for i in (3, 4)]
    for h in hist:
        h["subgoal"] = np.array([0.5, 0.0, 0.1, 0.0])
    a = Policy.load(gravmap_run, "cpu").predict(hist, 3, seed=2)
    b = Policy.load(gravmap_run, "cpu").predict(hist, 3, seed=2)
    np.testing.assert_array_equal(a, b)
    hist[-1]["subgoal"] = np.array([0.6, 0.1, 0.3, 1.0])
    assert not np.array_equal(a, Policy.load(gravmap_run, "cpu").predict(hist, 3, seed=2))  # the map matters
    with pytest.raises(ParameterError, match="subgoal"):
        Policy.load(gravmap_run, "cpu").predict([{k: v for k, v in h.items() if k != "subgoal"} for h in hist])
    env = make_env("insert")
    runner = PolicyRunner(Policy.load(gravmap_run, "cpu"), skill="insert")
    env.reset(seed=5)
    runner.reset(env)
    for _ in range(6):
        env.step(runner.act(env))
    assert runner.subgoals is not None and runner.subgoals.current.name in ("above hole", "in hole")
    env.close()


@pytest.mark.slow
def test_guidance_moves_sampled_positions_towards_the_subgoal(gravmap_run, state_store):
    policy = Policy.load(gravmap_run, "cpu")
    ep = state_store.load(0).data
    hist = [{k[4:]: v[i] for k, v in ep.items() if k.startswith("obs/")} for i in (0, 1)]
    tcp = hist[-1]["tcp_pose"][:3]
    goal = tcp + np.array([0.03, -0.02, -0.03])
    for h in hist:
        h["subgoal"] = np.r_[goal, 0.0]
    first = policy.config.obs_horizon - 1

    def closest(chunks):
        pos = np.cumsum(chunks[:, first:, :3], axis=1)  # TCP positions along the chunk, from the TCP
        return np.linalg.norm(pos - (goal - tcp), axis=-1).min(axis=1).mean()

    plain = closest(policy.predict(hist, 16, seed=0))
    guided = closest(policy.predict(hist, 16, seed=0, guidance=10.0))
    assert guided < 0.8 * plain, (plain, guided)


def test_subgoal_tracker_advances_when_reached():
    from policies.gravmap.subgoals import Subgoal

    above, inside = Subgoal(np.array([0, 0, 0.1]), 0.0, "a"), Subgoal(np.zeros(3), 0.0, "b")
    tracker = SubgoalTracker([above, inside], tolerance=0.01)
    assert tracker.update(np.array([0.05, 0, 0.2])).name == "a"
    assert tracker.update(np.array([0.005, 0, 0.1])).name == "b"
    assert tracker.update(np.array([0, 0, 0.3])).name == "b"  # never goes back
    tracker = SubgoalTracker([above, inside], tolerance=0.01)
    assert tracker.update(np.array([0.02, 0, 0.098])).name == "a"  # beside it, not past it
    assert tracker.update(np.array([0.02, 0, 0.08])).name == "b"  # skirted it and went on down
    with pytest.raises(ParameterError):
        SubgoalTracker([])


def test_configs_without_gravmap_load_and_build_the_plain_model(state_store):
    old = tiny().to_dict()
    for key in [k for k in old if k.startswith("gravmap")]:
        del old[key]  # a config written before GravMap existed
    config = PolicyConfig.from_dict(old)
    assert "gravmap" not in config.conditioners
    config, _ = fit_config_to_data(config, [state_store])
    ds = SequenceDataset([state_store], config, progress=False)
    assert "subgoal" not in ds.shapes
    names = build_model(config, ds.shapes).state_dict()
    assert not any("gravmap" in n or "position_unet" in n for n in names)
    with pytest.raises(ParameterError, match="gravmap rho"):
        tiny(conditioners=("gravmap",), gravmap_rho=0.0)


def test_novel_placement_puts_the_board_outside_the_training_box():
    from sim.tasks.insert import BOARD_CENTRE

    offsets = {}
    for placement in ("train", "novel"):
        env = make_env("insert", placement=placement)
        offsets[placement] = []
        for seed in range(8):
            env.reset(seed=seed)
            board = env.object_pose("board")
            offsets[placement].append(np.abs(board[:2] - BOARD_CENTRE).max())
        env.close()
    assert max(offsets["train"]) <= 0.16 + 1e-9
    assert min(offsets["novel"]) > 0.16
    with pytest.raises(ParameterError, match="placement"):
        make_env("insert", placement="elsewhere")


@pytest.mark.slow
def test_gravmap_commands(cloud_store, state_store, gravmap_run, tmp_path, capsys):
    import json

    from fmb.cli import main

    png = tmp_path / "map.png"
    assert main(["gravmap", "show", "--data", str(cloud_store.root), "--episode", "0", "--out", str(png)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert png.stat().st_size > 10_000 and shown["points"] > 0 and shown["keyposes"][-1]["cue"] == "end"
    assert main(["gravmap", "show", "--episode", f"{cloud_store.root}/7", "--out", str(png)]) == 2
    assert "--episode 7" in capsys.readouterr().err

    run = tmp_path / "run"
    argv = ["train", "--data", str(state_store.root), "--out", str(run), "--steps", "2", "--gravmap", "--quiet"]
    assert main(argv) == 0
    assert json.loads((run / "run.json").read_text())["policy"]["conditioners"] == ["gravmap"]
    capsys.readouterr()
    argv = [
        "eval",
        "--policy",
        str(gravmap_run),
        "--episodes",
        "1",
        "--placement",
        "novel",
        "--guidance",
        "2",
        "--quiet",
    ]
    assert main([*argv, "--json", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["placement"] == "novel" and result["runner"]["guidance"] == 2.0
    assert main([*argv[:-1], "--placement", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_a_checkpoint_from_before_the_conditioner_registry_still_loads(state_store, tmp_path):
    """Configs wrote GravMap as a flag (`"gravmap": true`) and its encoder's tensors as
    `encoder.gravmap.*`; both read as the "gravmap" conditioner's today."""
    from safetensors.torch import load_file, save_file

    from policies.common import checkpoint

    legacy = {k: v for k, v in tiny().to_dict().items() if k != "conditioners"} | {"gravmap": True}
    config = PolicyConfig.from_dict(legacy)
    assert config.conditioners == ("gravmap",)
    assert PolicyConfig.from_dict(legacy | {"gravmap": False}).conditioners == ()
    config, _ = fit_config_to_data(config, [state_store])
    ds = SequenceDataset([state_store], config, progress=False)
    model = build_model(config, ds.shapes)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    renamed = {k.replace("encoder.conditioners.gravmap.", "encoder.gravmap."): v for k, v in model.state_dict().items()}
    assert any(k.startswith("encoder.gravmap.") for k in renamed)
    save_file({k: v.contiguous() for k, v in renamed.items()}, str(folder / checkpoint.WEIGHTS))
    fresh = build_model(config, ds.shapes)
    checkpoint.load_weights(folder, fresh)
    for name, tensor in model.state_dict().items():
        assert (fresh.state_dict()[name] == tensor).all(), name
    assert set(load_file(str(folder / checkpoint.WEIGHTS))) == set(renamed)
