"""The preference store, outcome labels, and labelling by hand (pictures, terminal, web page)."""

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from policies.preference.collect import label_pairs
from policies.preference.data import PreferenceSet
from policies.preference.exceptions import PreferenceDataError
from policies.preference.label import label_terminal, parse_ranking, record_ranking, render_state, serve


def _obs(rng):
    return {
        "tcp_pose": np.r_[0.5, 0.0, 0.2, 1.0, 0, 0, 0].astype(np.float32),
        "points": np.c_[rng.uniform(0.4, 0.6, (200, 3)), rng.uniform(0, 1, (200, 3))].astype(np.float32),
        "rgb/side_1": rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
    }


@pytest.fixture
def pset(tmp_path):
    rng = np.random.default_rng(0)
    p = PreferenceSet.create(tmp_path / "p", {"task": "insert", "policy_config": {"obs_horizon": 2}})
    for _ in range(3):
        p.add_state([_obs(rng), _obs(rng)], rng.uniform(-0.02, 0.02, (3, 8, 7)))
    return p


def test_outcome_labels():
    outcomes = [
        {"success": False, "failed": False, "progress": 0.60, "unstable": ""},
        {"success": True, "failed": False, "progress": 1.00, "unstable": ""},
        {"success": False, "failed": True, "progress": 0.90, "unstable": ""},
        {"success": False, "failed": False, "progress": 0.605, "unstable": ""},
        {"success": False, "failed": False, "progress": 0.95, "unstable": "physics diverged"},
    ]
    got = {(a, b): lab for a, b, lab in label_pairs(outcomes, tie_tolerance=0.01)}
    assert got[(0, 1)] == "second"  # success first
    assert got[(0, 2)] == "first"  # a dropped peg loses despite more progress
    assert got[(0, 3)] == "tie"  # progress within the tolerance
    assert got[(2, 3)] == "second"
    assert all(got[(i, 4)] == "invalid" for i in range(4))
    assert len(got) == 10


def test_store_round_trip_and_bad_labels(pset, tmp_path):
    assert len(PreferenceSet.open(pset.root)) == 3
    state = pset.load_state(1)
    assert state["candidates"].shape == (3, 8, 7) and len(state["history"]) == 2 and state["paths"] is None
    with pytest.raises(PreferenceDataError, match="state 0 .* has no labels"):
        pset.pairs()
    with pytest.raises(PreferenceDataError, match="contradictory labels for candidates 0 and 2"):
        pset.set_pairs(0, [[0, 2, "first"], [2, 0, "first"]], "human")
    assert pset.states[0]["pairs"] == []  # a refused change is not kept
    with pytest.raises(PreferenceDataError, match="two different candidates in 0..2"):
        pset.set_pairs(0, [[0, 3, "first"]], "human")
    with pytest.raises(PreferenceDataError, match="label 'better'"):
        pset.set_pairs(0, [[0, 1, "better"]], "human")
    pset.set_pairs(0, [[0, 2, "first"], [2, 0, "second"], [1, 2, "tie"]], "human")  # consistent repeats are fine
    index = json.loads((pset.root / "index.json").read_text())
    del index["states"][1]["pairs"]
    (pset.root / "index.json").write_text(json.dumps(index))
    with pytest.raises(PreferenceDataError, match="state 1: no 'pairs' entry"):
        PreferenceSet.open(pset.root)
    (pset.root / "index.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(PreferenceDataError, match="schema 'other'"):
        PreferenceSet.open(pset.root)
    with pytest.raises(PreferenceDataError, match="index.json: missing"):
        PreferenceSet.open(tmp_path / "nowhere")
    with pytest.raises(PreferenceDataError, match="already holds a preference set"):
        PreferenceSet.create(pset.root, {"task": "insert"})


def test_ranking_and_pictures(pset):
    assert parse_ranking("2 0=1", 3) == [[2], [0, 1]]
    for bad, msg in (("0 3", "does not exist"), ("0 0", "twice"), ("1", "at least two"), ("a b", "not a candidate")):
        with pytest.raises(ParameterError, match=msg):
            parse_ranking(bad, 3)
    pairs = record_ranking(pset, 1, "2, 0=1")
    assert pairs == [[0, 1, "tie"], [0, 2, "second"], [1, 2, "second"]]
    assert PreferenceSet.open(pset.root).states[1]["source"] == "human"
    picture = render_state(pset, 1)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 5000
    answers = iter(["0 9", "1 0 2", "q"])  # a bad ranking is asked again; q stops
    said = []
    assert label_terminal(pset, ask=lambda prompt: next(answers), say=said.append) == 1
    assert any("does not exist" in s for s in said)
    assert PreferenceSet.open(pset.root).states[0]["pairs"] == [[0, 1, "second"], [0, 2, "first"], [1, 2, "first"]]


def test_web_page_records_a_ranking(pset):
    server = serve(pset, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = urllib.request.urlopen(base + "/").read().decode()
        assert "state 0" in page and "/picture/0.png" in page
        assert urllib.request.urlopen(base + "/picture/0.png").read()[:4] == b"\x89PNG"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/rank", data=b"state=0&ranking=0+7")
        assert e.value.code == 400
        urllib.request.urlopen(base + "/rank", data=b"state=0&ranking=2+1+0").read()
        assert "state 1" in urllib.request.urlopen(base + "/").read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert PreferenceSet.open(pset.root).states[0]["pairs"][0] == [0, 1, "second"]
