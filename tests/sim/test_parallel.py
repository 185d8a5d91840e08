"""sim.parallel: rollouts as Ray actors on a real local Ray instance (two CPUs), against a serial run.

One Ray instance serves the module; the episodes are 4-step-ish scripted insertions (real MuJoCo).
"""

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
import ray  # noqa: E402

from fmb.cli import main  # noqa: E402
from fmb_core.errors import ParameterError  # noqa: E402
from sim.collect import RunSpec, collect  # noqa: E402
from sim.parallel import Executor, WorkerDied, make_executor  # noqa: E402
from sim.store import EpisodeStore  # noqa: E402

SPEC = RunSpec("insert", families=("round",), sizes=("M",))
SEEDS = 3


@pytest.fixture(scope="module")
def cluster():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need DyingSpec by value
    # workers at the tests' own priority, as sim.parallel starts a local instance
    system = {"worker_niceness": 0}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR", _system_config=system)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    collect(SPEC, out, SEEDS, progress=False)
    return out


class DyingExpert:
    """The scripted expert, except that its process dies (os._exit) when an episode of seed
    `die_on` starts: once (then `marker` exists) or, with no marker, every time."""

    def __init__(self, expert, die_on: int, marker: str):
        object.__setattr__(self, "_expert", expert)
        object.__setattr__(self, "_die", (die_on, marker))

    def __getattr__(self, name):
        return getattr(self._expert, name)

    def __setattr__(self, name, value):
        setattr(self._expert, name, value)

    def reset(self, env):
        die_on, marker = self._die
        if env.np_random_seed == die_on and not (marker and os.path.exists(marker)):
            if marker:
                Path(marker).touch()
            os._exit(1)
        return self._expert.reset(env)

    def act(self, env):
        return self._expert.act(env)


@dataclasses.dataclass(frozen=True)
class DyingSpec(RunSpec):
    die_on: int = -1
    marker: str = ""

    def build(self):
        env, expert = super().build()
        return env, DyingExpert(expert, self.die_on, self.marker)


def dying(die_on: int, marker: str = "") -> DyingSpec:
    return DyingSpec(
        **{f.name: getattr(SPEC, f.name) for f in dataclasses.fields(RunSpec)}, die_on=die_on, marker=marker
    )


def episodes(path: Path) -> dict[int, tuple]:
    store = EpisodeStore.open(path)
    out = {}
    for index in store.episode_indices():
        meta = store.load_meta(index)
        out[meta["seed"]] = (meta["success"], meta["steps"], store.load(index, ["action"]).data["action"])
    return out


def assert_same_episodes(a: Path, b: Path, seeds=None) -> None:
    ea, eb = episodes(a), episodes(b)
    seeds = sorted(ea) if seeds is None else seeds
    assert sorted(eb) == sorted(ea)
    for seed in seeds:
        assert ea[seed][:2] == eb[seed][:2], seed
        np.testing.assert_array_equal(ea[seed][2], eb[seed][2])


@pytest.mark.slow
def test_a_ray_collect_equals_the_serial_one_episode_for_episode(cluster, serial, tmp_path):
    summary = collect(SPEC, tmp_path / "ray", SEEDS, progress=False, executor=Executor("ray", 2))
    assert summary["new"] == SEEDS and summary["worker_failures"] == [] and summary["executor"]["kind"] == "ray"
    assert_same_episodes(serial, tmp_path / "ray")


@pytest.mark.slow
def test_a_killed_worker_loses_only_its_episode_which_is_retried(cluster, serial, tmp_path):
    spec = dying(1, str(tmp_path / "died"))
    summary = collect(spec, tmp_path / "ray", SEEDS, progress=False, executor=Executor("ray", 2))
    assert (tmp_path / "died").exists(), "the worker was not killed"
    assert summary["worker_failures"] == [] and summary["episodes"] == SEEDS
    assert_same_episodes(serial, tmp_path / "ray")  # the retried episode is the serial one


@pytest.mark.slow
def test_a_worker_that_always_dies_is_a_recorded_failure_and_a_rerun_collects_it(cluster, serial, tmp_path):
    out = tmp_path / "ray"
    spec = dying(2)
    summary = collect(spec, out, SEEDS, progress=False, executor=Executor("ray", 2, retries=0))
    assert summary["worker_failures"] == [2] and summary["episodes"] == SEEDS - 1
    assert sorted(EpisodeStore.open(out).done_seeds()) == [0, 1]
    again = collect(SPEC, out, SEEDS, progress=False)  # resumes (in this process): seed 2 only
    assert again["new"] == 1 and again["skipped_existing"] == SEEDS - 1
    assert_same_episodes(serial, out)


@pytest.mark.slow
def test_the_cli_runs_expert_eval_on_ray(cluster, capsys):
    argv = ["sim", "expert-eval", "--task", "insert", "--families", "round", "--sizes", "M", "--episodes", "2"]
    assert main([*argv, "--workers", "2", "--executor", "ray", "--json"]) == 0
    result = __import__("json").loads(capsys.readouterr().out)
    assert result["executor"]["kind"] == "ray" and result["overall"]["episodes"] == 2


def test_an_unreachable_ray_address_fails_at_once_naming_it(tmp_path, capsys):
    argv = ["sim", "collect", "--task", "insert", "--episodes", "2", "--out", str(tmp_path / "s"), "--quiet"]
    assert main([*argv, "--ray-address", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "--ray-address '127.0.0.1:9'" in err and "no Ray cluster answers there" in err
    assert not (tmp_path / "s").exists()  # before any store is made
    assert main([*argv, "--ray-address", "nonsense"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err


def test_the_executor_is_ray_when_an_address_is_given(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert make_executor("auto", 2) == Executor("local", 2)
    assert make_executor("ray", 2) == Executor("ray", 2)
    assert make_executor("auto", 2, "10.0.0.1:6379") == Executor("ray", 2, "10.0.0.1:6379")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")
    assert make_executor("auto", 3).address == "10.0.0.2:6379"
    assert make_executor("local", 3) == Executor("local", 3)  # --executor local wins over RAY_ADDRESS
    with pytest.raises(ParameterError, match="cannot go with --executor local"):
        make_executor("local", 2, "10.0.0.1:6379")
    with pytest.raises(ParameterError, match="workers"):
        Executor("local", 65)


@pytest.mark.slow
def test_a_local_worker_that_dies_ends_the_run_with_a_clear_error_keeping_what_finished(tmp_path):
    out = tmp_path / "local"
    with pytest.raises(WorkerDied, match="a local worker process died"):
        collect(dying(2), out, SEEDS, progress=False, executor=Executor("local", 2))
    assert EpisodeStore.open(out).done_seeds() <= {0, 1}  # the store opens; the dead episode is not in it


# -- stage graphs (the ablation's pipeline) --------------------------------------------------------


def write_after(folder: str, name: str, needs: tuple[str, ...], seconds: float) -> str:
    """A stage: fails unless the files of `needs` exist, then works `seconds` and writes its own."""
    import time

    missing = [n for n in needs if not (Path(folder) / n).exists()]
    if missing:
        raise RuntimeError(f"{name} started before {missing}")
    time.sleep(seconds)
    (Path(folder) / name).write_text(name)
    return name


def fails() -> None:
    raise ValueError("no such policy")


def graph(folder: Path) -> list:
    """a, b independent (2 s each); c needs both; d needs c."""
    from functools import partial

    from sim.parallel import Stage

    def stage(name, deps=(), seconds=2.0):
        return Stage(name, partial(write_after, str(folder), name, deps, seconds), deps=deps)

    return [stage("a"), stage("b"), stage("c", ("a", "b"), 0.1), stage("d", ("c",), 0.1)]


@pytest.mark.parametrize("pipeline", ["serial", "ray"])
def test_a_stage_graph_runs_each_stage_after_its_dependencies(cluster, pipeline, tmp_path):
    from sim.parallel import run_stages

    lines = []
    done = run_stages(graph(tmp_path), pipeline, log=lines.append)
    assert list(done) == ["a", "b", "c", "d"] and [r["result"] for r in done.values()] == ["a", "b", "c", "d"]
    for later, earlier in (("c", "a"), ("c", "b"), ("d", "c")):
        assert done[later]["start"] >= done[earlier]["end"]
    a, b = done["a"], done["b"]
    overlap = min(a["end"], b["end"]) - max(a["start"], b["start"])
    if pipeline == "ray":  # independent stages run at once, in two Ray workers
        assert overlap > 0 and a["pid"] != b["pid"] and len(lines) == 4
    else:  # one after the other, in this process
        assert overlap <= 0 and a["pid"] == os.getpid()


@pytest.mark.parametrize("pipeline", ["serial", "ray"])
def test_a_failing_stage_is_named_and_what_finished_keeps_its_output(cluster, pipeline, tmp_path):
    from sim.parallel import Stage, StageFailed, run_stages

    stages = graph(tmp_path)
    stages.insert(2, Stage("train/broken", fails, deps=("a",)))
    stages.append(Stage("eval/after-broken", fails, deps=("train/broken",)))
    with pytest.raises(StageFailed, match="stage train/broken failed: ValueError: no such policy"):
        run_stages(stages, pipeline)
    assert (tmp_path / "a").exists() and (tmp_path / "b").exists()


def test_a_stage_graph_must_list_dependencies_first():
    from sim.parallel import Stage, check_stages

    with pytest.raises(ParameterError, match="'c' depends on b, not an earlier stage"):
        check_stages([Stage("a", fails), Stage("c", fails, deps=("b",)), Stage("b", fails)])
    with pytest.raises(ParameterError, match="'a' appears twice"):
        check_stages([Stage("a", fails), Stage("a", fails)])
