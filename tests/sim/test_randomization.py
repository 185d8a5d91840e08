"""Per-episode randomisation of colour, friction and mass: seeded, in range, applied to the physics."""

from __future__ import annotations

import numpy as np
import pytest

from cad.fmb_reference import COLOURS
from fmb_core.errors import ParameterError
from sim.env import make_env
from sim.objects import ObjectPool
from sim.randomization import Randomization


def test_draws_are_seeded_and_in_range():
    r = Randomization()
    a = r.draw(np.random.default_rng(4), ["peg", "board"])
    b = r.draw(np.random.default_rng(4), ["peg", "board"])
    assert a == b
    draws = [r.draw(np.random.default_rng(s), ["peg"])["peg"] for s in range(50)]
    assert all(0.6 <= d.friction <= 1.0 and 0.8 <= d.mass_scale <= 1.25 for d in draws)
    assert all(d.colour in COLOURS for d in draws) and len({d.colour for d in draws}) >= 5
    with pytest.raises(ParameterError, match="friction"):
        Randomization(friction=(0.9, 0.5))


def test_properties_reach_the_mujoco_model():
    env = make_env("insert", objects=ObjectPool.fmb(families=("round",), sizes=("M",)))
    _, info = env.reset(seed=0)
    props = info["object_properties"]["peg"]
    m = env.backend.model
    body = env.backend._bodies["peg"]
    nominal_mass = env.backend._nominal["peg"][0]
    assert m.body_mass[body] == pytest.approx(nominal_mass * props["mass_scale"])
    frictions = {round(float(m.geom_friction[g, 0]), 9) for g in env.backend._object_geoms["peg"] if m.geom_contype[g]}
    assert frictions == {round(props["friction"], 9)}
    # Off: the part's own colour, the scene's friction, the estimated mass.
    plain = make_env("insert", objects=ObjectPool.fmb(families=("round",), sizes=("M",)), randomize=False)
    _, info = plain.reset(seed=0)
    props = info["object_properties"]["peg"]
    assert props["friction"] == 0.8 and props["mass_scale"] == 1.0 and props["colour"] == "yellow"
    env.close()
    plain.close()
