"""`fmb bench policy` reports decision latencies for the presets (timing values are not judged here)."""

import json

import pytest

from fmb.cli import main


@pytest.mark.slow
def test_bench_policy_reports_every_figure(capsys):
    assert main(["bench", "policy", "--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for label in ("small", "small_1024_points"):
        row = result["cpu"][label]
        assert row["inference_steps"] == 10 and row["parameters"] > 100_000
        for key in ("decision_n1_s", "decision_n16_s", "bc_decision_s"):
            assert 0 < row[key] < 60
    assert result["cpu"]["small_1024_points"]["points"] == 1024
    for key in ("select_implicit_n16_s", "select_explicit_n16_s"):  # preference selection, N = 16
        assert 0 < result["cpu"]["small"][key] < 60
    assert main(["bench", "policy", "--repeats", "0"]) == 2


@pytest.mark.slow
def test_load_bench_parts_measure_decisions_and_training_beside_a_real_competing_load():
    """`fmb bench load`'s pieces on the `tiny` preset: decision and training figures on a given
    thread count (the tuner's choice reported), inside a real `sim.load` process that runs while
    the block runs and is gone after it."""
    import torch

    from fmb.bench_load import _ratios
    from policies.experiments.bench import build_policy, decision_figures, training_figures
    from sim.load import CompetingLoad

    policy = build_policy("tiny", "cpu")
    before = torch.get_num_threads()
    try:
        idle = {"decisions": {}, "training": {}}
        for which, threads in (("budget", 1), ("all_cores", 2)):
            idle["decisions"][which] = decision_figures(policy, 2, threads, max_seconds=2.0)
            idle["training"][which] = training_figures(policy, 12, threads, tune=which == "budget", max_seconds=2.0)
        with CompetingLoad(seconds=60.0) as load:
            assert load.running
            loaded = {
                "decisions": {w: decision_figures(policy, 2, 1, max_seconds=2.0) for w in ("budget", "all_cores")},
                "training": {w: training_figures(policy, 12, 1, tune=False, max_seconds=2.0) for w in idle["training"]},
            }
        assert not load.running and load.proc.returncode is not None
    finally:
        torch.set_num_threads(before)
    d = idle["decisions"]["budget"]
    assert d["threads"] == 1 and d["n1_ms"]["n"] == 2 and 0 < d["n1_ms"]["p50"] <= d["n1_ms"]["p99"]
    assert d["n16_ms"]["p50"] > 0 and d["select_implicit_n16_ms"] > 0
    t = idle["training"]["budget"]
    assert t["tuned"] and t["threads"] in (1, 2) and t["steps_per_s"] > 0
    ratios = _ratios(idle, loaded)
    assert ratios["decision_budget"]["n1_p50"] > 0 and ratios["training_speed_all_cores"] > 0
    assert "ros_missed_cycles" not in ratios and "eval_workers_speedup" not in ratios


def test_competing_load_stops_by_itself():
    import subprocess
    import sys
    import time

    began = time.monotonic()
    cmd = [sys.executable, "-m", "sim.load", "--seconds", "1", "--no-render"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and time.monotonic() - began < 60
    report = json.loads(proc.stdout)
    assert report["steps"] > 0 and report["render"] is False
