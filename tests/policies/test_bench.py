"""`fmb bench policy` reports decision latencies for the presets (timing values are not judged here)."""

import json

from fmb.cli import main


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
