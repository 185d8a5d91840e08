"""The README's main job end to end, at toy sizes: every stage runs and the report links its plots."""

import json
import re

import pytest

from fmb.cli import main

pytestmark = pytest.mark.train


@pytest.mark.slow
def test_quickstart_pipeline_at_toy_sizes(tmp_path, capsys):
    out = tmp_path / "qs"
    argv = [
        "quickstart",
        "--out",
        str(out),
        "--demos",
        "2",
        "--diffusion-steps",
        "4",
        "--bc-steps",
        "4",
        "--eval-episodes",
        "1",
        "--workers",
        "1",
        "--point-cloud",
        "512",
        "--image-size",
        "48",
        "--config",
        "tiny",
        "--eval-max-steps",
        "8",
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    report = out / "report.md"
    assert f"report: {report}" in printed
    text = report.read_text()
    for policy in ("diffusion", "bc"):
        for objects in ("seen", "held-out"):  # perceived goals (a robot's), the truth (upper bound) beside
            assert f"| {policy} | {objects} |" in text and f"| {policy} | {objects}, truth (upper bound) |" in text
    for image in re.findall(r"\]\(([^)]+\.png)\)", text):
        assert (out / image).stat().st_size > 1000, image
    assert len(re.findall(r"\.png\)", text)) >= 3  # success per family, loss curves, a video still
    results = json.loads((out / "results.json").read_text())["results"]
    assert results["bc"]["held-out"]["split"] == {"name": "family_holdout", "side": "test"}
    assert results["bc"]["seen"]["max_steps"] == 8 and "at most 8 steps per episode" in text
    assert set(results["diffusion"]["held-out"]["per_family"]) <= {"hexagon", "star"}
    perceived = results["bc"]["seen"]["runner"]
    assert perceived["goals"] == "perceived" and perceived["sensor"] == "default"
    truth = results["bc"]["seen, truth (upper bound)"]
    assert truth["runner"]["goals"] == "truth" and truth["goals"]["source"] == "truth (upper bound)"
    assert "goals in evaluation" in text
    # what perception and the filter did, and success against the goal's error, for perceived rows only
    perception = text.split("## Perception and safety filter (perceived goals)")[1].split("\n## ")[0]
    assert "| bc | seen | " in perception and "truth" not in perception.split("|---|")[-1]
    assert "(plots/success_by_goal_error.png)" in text
    # A rerun reuses the demonstrations, the trained policies and their evaluations.
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("already trained to 4 steps") == 2 and printed.count("reusing") == 8
    # Other stage settings in the same folder are refused, and nothing saved is touched.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main([*argv, "--goal", "hole"]) == 2
    assert "goal 'tcp_goal' -> 'hole'" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    # A record without the policies' state inputs (a version that gave them the TCP state) too.
    record = json.loads((out / "quickstart.json").read_text())
    assert record.pop("state_keys") == ["gripper"]
    (out / "quickstart.json").write_text(json.dumps(record))
    assert main(argv) == 2
    assert "state_keys None -> ['gripper']" in capsys.readouterr().err
    # Stages from before settings were recorded are refused too, not reused.
    (out / "quickstart.json").unlink()
    assert main(argv) == 2
    assert "without a record of their settings" in capsys.readouterr().err


@pytest.mark.slow
def test_quickstart_of_a_chain_at_toy_sizes(tmp_path, capsys):
    """`fmb quickstart --task vertical_chain`: chained demonstrations cut into skills, a policy per
    skill, the chain evaluated with per-stage rows in the report; a rerun reuses everything."""
    out = tmp_path / "chain"
    argv = ["quickstart", "--task", "vertical_chain", "--out", str(out), "--demos", "2", "--diffusion-steps", "4",
            "--bc-steps", "0", "--eval-episodes", "1", "--workers", "1", "--point-cloud", "512", "--image-size",
            "48", "--config", "tiny", "--eval-max-steps", "15", "--eval-goals", "truth", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    text = (out / "report.md").read_text()
    assert "### Per stage" in text and "| diffusion | seen, truth (upper bound) | " in text
    assert json.loads((out / "quickstart.json").read_text())["goal"] == "skill"
    for skill in ("grasp", "rotate", "insert"):
        assert (out / "stages" / skill / "store.json").is_file() and (out / f"diffusion_{skill}").is_dir()
    result = json.loads((out / "results.json").read_text())["results"]["diffusion"]["seen, truth (upper bound)"]
    assert set(result["policy"]) == {"grasp", "rotate", "insert"} and set(result["per_stage"]) == set(result["policy"])
    assert not (out / "bc_grasp").exists()
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("already trained to 4 steps") == 3 and printed.count("reusing") == 2
    assert main([*argv, "--goal", "hole"]) == 2
    assert "each condition on their own goal" in capsys.readouterr().err
