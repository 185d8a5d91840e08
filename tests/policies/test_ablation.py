"""`fmb bench ablation` end to end at toy sizes: every variant trains, collects, scores and is
evaluated on the three object sets, its stages run as Ray tasks on a real local Ray instance
(`--pipeline ray`); the table, plot and JSON agree; a serial rerun reuses every stage, and a folder
made with other settings or another regime of demonstrations is refused."""

import json
import shutil

import pytest

from fmb.cli import main
from policies.common import checkpoint

pytestmark = pytest.mark.train


@pytest.mark.slow
def test_ablation_at_toy_sizes(cloud_store, tmp_path, capsys):
    out = tmp_path / "ablation"
    argv = [
        "bench",
        "ablation",
        "--data",
        str(cloud_store.root),
        "--out",
        str(out),
        "--config",
        "tiny",
        "--steps",
        "3",
        "--prefs-states",
        "4",
        "--prefs-candidates",
        "3",
        "--prefs-tie-tolerance",
        "1e-6",  # a 3-step policy barely moves: its candidates differ by less than a millimetre
        "--reward-steps",
        "2",
        "--candidates",
        "2",
        "--episodes",
        "1",
        "--workers",
        "1",
        "--max-steps",
        "6",  # an untrained policy never succeeds: cap its episodes, not the task's 100 steps
        "--goals",
        "truth",  # the wiring is under test; perceived goals cost 2-3 s an episode (test_perceived_goals.py)
        "--variants",
        "plain,bc,implicit,explicit,oracle,gravmap,both",
        "--bc-steps",
        "2",
        "--quiet",
    ]
    pytest.importorskip("ray")
    assert main([*argv[:-1], "--pipeline", "ray", "--quiet"]) == 0
    summary = json.loads((out / "ablation.json").read_text())
    results = summary["results"]
    assert list(results) == ["plain", "bc", "implicit", "explicit", "oracle", "gravmap", "both"]
    for variant, per in results.items():
        assert list(per) == ["seen", "held-out", "novel placement"], variant
        for result in per.values():
            assert result["overall"]["episodes"] == 1
            assert result["runner"]["action_horizon"] == 2
            assert result["max_steps"] == 6 and result["overall"]["mean_steps"] <= 6
            assert result["runner"]["goals"] == "truth"
    assert results["implicit"]["seen"]["runner"]["select"] == "implicit"
    oracle = results["oracle"]["seen"]["runner"]
    assert oracle["select"] == "oracle" and oracle["candidates"] == 2
    assert results["both"]["seen"]["policy"].startswith(str(out / "policy_gravmap"))
    assert results["bc"]["held-out"]["policy"].startswith(str(out / "policy_bc"))
    assert checkpoint.load_meta(checkpoint.resolve(out / "policy_bc"))["policy"]["policy_type"] == "bc"
    assert results["plain"]["novel placement"]["placement"] == "novel"
    assert set(results["plain"]["held-out"]["per_family"]) <= {"hexagon", "star"}
    # The stages ran as Ray tasks, each after the stages it needs, independent ones at once.
    stages = json.loads((out / "pipeline.json").read_text())
    assert len(stages) == 3 + 2 + 3 + 7 * 3 and {"train/plain", "prefs/gravmap", "eval/both/seen"} <= set(stages)
    assert stages["prefs/plain"]["start"] >= stages["train/plain"]["end"]
    assert stages["eval/both/seen"]["start"] >= stages["reward/gravmap/implicit"]["end"]
    assert len({r["pid"] for r in stages.values()}) >= 2
    spans = sorted((r["start"], r["end"]) for r in stages.values())
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), "no two stages ran at once"
    table = (out / "ablation.md").read_text()
    assert table.count("| ") >= 5 * 4 and "novel placement" in table
    assert (out / "ablation.png").stat().st_size > 1000
    capsys.readouterr()
    # A rerun reuses every stage: no training, collection or evaluation is repeated.
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "training" not in printed and "collecting" not in printed and "evaluating" not in printed
    # Other stage settings in the same folder are refused.
    assert main([*argv[:-1], "--steps", "4", "--quiet"]) == 2
    assert "steps 3 -> 4" in capsys.readouterr().err
    # So are demonstrations of another regime (multimodal: `fmb sim collect --expert-modes all`).
    multimodal = tmp_path / "multimodal"
    shutil.copytree(cloud_store.root, multimodal)
    head = json.loads((multimodal / "store.json").read_text())
    head["meta"]["expert_modes"] = "all"
    (multimodal / "store.json").write_text(json.dumps(head))
    data = argv.index("--data") + 1
    assert main([*argv[:data], str(multimodal), *argv[data + 1 :]]) == 2
    assert "expert_modes 'nearest' -> 'all'" in capsys.readouterr().err


def test_ablation_rejects_unknown_variants_and_missing_data(tmp_path):
    from fmb_core.errors import ParameterError
    from policies.experiments.ablation import AblationConfig, run_ablation

    with pytest.raises(ParameterError, match="--variants"):
        AblationConfig(variants=("plain", "magic"))
    with pytest.raises(ParameterError, match="not an episode store"):
        run_ablation(AblationConfig(data=str(tmp_path)), tmp_path / "out", progress=False)
