"""Thread budgets (`fmb_core.threads`): the rules, the override order, the tuner, thread priorities,
and real worker processes that compute with the budget they were given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fmb_core import threads
from fmb_core.errors import ParameterError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "workload, cores, workers, expected",
    [
        ("inference", 2, 1, 1),
        ("inference", 16, 1, 1),
        ("rollout", 2, 2, 1),
        ("rollout", 8, 1, 1),
        ("training", 2, 1, 2),
        ("training", 16, 1, 16),
        ("training", 16, 4, 4),
        ("training", 2, 3, 1),  # never 0
        ("perception", 8, 2, 4),
    ],
)
def test_the_rule_for_each_workload(workload, cores, workers, expected):
    budget = threads.plan_threads(workload, cores, workers)
    assert (budget.threads, budget.source, budget.interop) == (expected, "rule", 1)
    assert budget.cores == cores and budget.workers == workers and budget.workload == workload


def test_the_flag_wins_over_the_environment_which_wins_over_the_rule():
    assert threads.plan_threads("inference", 8, 1, override=3, env=5).threads == 3
    assert threads.plan_threads("inference", 8, 1, override=3, env=5).source == "threads"
    assert threads.plan_threads("inference", 8, 1, env=5).threads == 5
    assert threads.plan_threads("inference", 8, 1, env=5).source == threads.ENV_OVERRIDE
    described = threads.plan_threads("training", 2, 1).describe()
    assert described == "threads 2 (training; 2 usable cores, 1 worker; the rule)"


def test_bad_budgets_are_named():
    with pytest.raises(ParameterError, match="workload 'juggling'"):
        threads.plan_threads("juggling", 2)
    with pytest.raises(ParameterError, match="threads=-1"):
        threads.plan_threads("training", 2, override=-1)
    with pytest.raises(ParameterError, match="workers=0"):
        threads.plan_threads("training", 2, workers=0)
    with pytest.raises(ParameterError, match="FMB_THREADS='two'"):
        threads.env_override({"FMB_THREADS": "two"})
    assert threads.env_override({"FMB_THREADS": " 3 "}) == 3 and threads.env_override({}) == 0


def test_usable_cores_follow_the_affinity_mask():
    code = "import os; os.sched_setaffinity(0, {0}); from fmb_core.threads import usable_cores; print(usable_cores())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "1"


def test_apply_sets_torch_and_the_thread_variables_of_a_fresh_process():
    code = (
        "import os\n"
        "from fmb_core import threads\n"
        "threads.apply_threads(threads.plan_threads('inference', 8))\n"
        "import torch\n"  # imported after: takes OMP_NUM_THREADS
        "a = torch.get_num_threads()\n"
        "threads.apply_threads(threads.plan_threads('training', 8, override=3))\n"  # torch loaded: set directly
        "print(a, torch.get_num_threads(), os.environ['OMP_NUM_THREADS'], os.environ['LP_NUM_THREADS'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in threads.THREAD_VARIABLES}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    assert out.stdout.split() == ["1", "3", "3", "3"]


def _tuned(step_time, max_threads=4, steps=60, probe=2, hold=20):
    applied = []
    tuner = threads.ThreadTuner(max_threads, applied.append, probe=probe, hold=hold)
    for _ in range(steps):
        tuner.record(step_time(tuner.current))
    return tuner, applied


def test_tuner_measures_each_count_and_keeps_the_fastest():
    tuner, applied = _tuned(lambda n: {1: 0.30, 2: 0.20, 4: 0.25}[n], steps=12)
    assert tuner.candidates == [1, 2, 4]
    assert applied[:3] == [1, 2, 4] and tuner.choices == [2] and tuner.current == 2


def test_tuner_follows_a_load_that_appears():
    loaded = {"on": False}

    def step_time(n):  # idle: more threads are faster; loaded: threads wait for each other
        return {1: 0.3, 2: 0.2}[n] if not loaded["on"] else {1: 0.35, 2: 0.9}[n]

    applied = []
    tuner = threads.ThreadTuner(2, applied.append, probe=2, hold=10)
    for _ in range(20):
        tuner.record(step_time(tuner.current))
    assert tuner.choices == [2]
    loaded["on"] = True
    for _ in range(30):
        tuner.record(step_time(tuner.current))
    assert tuner.choices[-1] == 1 and tuner.current == 1


def test_tuner_with_one_thread_changes_nothing():
    tuner, applied = _tuned(lambda n: 0.1, max_threads=1)
    assert applied == [] and tuner.choices == [] and tuner.current == 1


def test_thread_priority_is_raised_or_the_refusal_is_said():
    result = {}

    def worker():
        result["text"] = threads.raise_thread_priority(nice=5)  # lowering needs no privilege
        result["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert result == {"text": "nice 5", "nice": 5}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != 5  # only that thread changed
    with pytest.raises(ParameterError, match="nice=-30"):
        threads.raise_thread_priority(nice=-30)


@pytest.mark.slow
def test_eval_workers_on_a_two_core_mask_compute_with_one_thread_each(tmp_path):
    """`fmb eval --workers 2` in a process pinned to 2 cores: each worker reports 1 torch thread;
    `--threads 2` overrides it. A real tiny policy, real MuJoCo episodes, real spawned workers."""
    pytest.importorskip("torch", reason="policies need the 'learn' extra (torch)")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a machine with at least 2 cores")
    from policies.train import train
    from sim.collect import RunSpec, collect
    from tests.policies.conftest import tiny, tiny_training

    collect(RunSpec("insert", families=("rectangle",)), tmp_path / "demos", episodes=1, progress=False)
    summary = train(
        [tmp_path / "demos"],
        tmp_path / "run",
        tiny(policy_type="bc"),
        tiny_training(steps=2),
        progress=False,
        log=lambda m: None,
    )
    assert summary["threads"]["workload"] == "training"
    cores = sorted(os.sched_getaffinity(0))[:2]

    def evaluate(*extra):
        code = (
            f"import os, sys; os.sched_setaffinity(0, {set(cores)!r}); from fmb.cli import main; "
            f"sys.exit(main(sys.argv[1:]))"
        )
        argv = ["eval", "--policy", str(tmp_path / "run"), "--episodes", "2", "--families", "rectangle"]
        argv += ["--workers", "2", "--quiet", "--json", str(tmp_path / "r.json"), *extra]
        argv += ["--goals", "truth", "--max-steps", "10"]  # the workers' threads are under test, not the episodes
        env = {k: v for k, v in os.environ.items() if k not in (threads.ENV_OVERRIDE, *threads.THREAD_VARIABLES)}
        proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads((tmp_path / "r.json").read_text())["threads"]

    default = evaluate()
    assert default["worker_torch_threads"] == [1]
    assert (default["threads"], default["cores"], default["workers"], default["source"]) == (1, 2, 2, "rule")
    forced = evaluate("--threads", "2")
    assert forced["worker_torch_threads"] == [2] and forced["source"] == "threads"
