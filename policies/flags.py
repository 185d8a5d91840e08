"""Command-line flags that several `fmb` subcommands share (eval, prefs collect, bench ablation):
one definition of each flag's name, choices, default and help."""

from __future__ import annotations


def add_goals_flag(p) -> None:
    """`--goals truth|perceived` (PolicyRunSpec.goals), shared by eval, prefs collect, bench ablation."""
    from sim.perceived_goals import DEFAULT_GOAL_SOURCE, GOAL_SOURCES

    p.add_argument(
        "--goals",
        default=DEFAULT_GOAL_SOURCE,
        choices=GOAL_SOURCES,
        help="skill goals from the simulator's truth (an upper bound) or, as a robot, from perception of the "
        f"side cameras' cloud with every action through the safety filter (default {DEFAULT_GOAL_SOURCE})",
    )


def add_sensor_flag(p) -> None:
    """`--sensor NAME` (PolicyRunSpec.sensor), shared by eval and prefs collect."""
    from policies.experiments.evaluate import DEFAULT_SENSORS
    from sim.sensor import SENSORS

    p.add_argument(
        "--sensor",
        default="",
        choices=("", *SENSORS),
        metavar="|".join(SENSORS),
        help="depth camera model (sim.sensor) of the policy's images and of perception's cloud; default by goal "
        f"source: {', '.join(f'{k} -> {v}' for k, v in DEFAULT_SENSORS.items())}",
    )


def add_hand_eye_flag(p) -> None:
    """`--hand-eye on|off` (PerceivedGoalConfig.hand_eye.enabled), shared by eval and bench perception."""
    p.add_argument(
        "--hand-eye",
        default="on",
        choices=("on", "off"),
        help="with perception, refine each side camera's calibration by registering the robot's hand (and the "
        "table) in its cloud first (sim.perception.hand_eye); off: the cameras as calibrated (default on)",
    )


def parse_policies(values: list[str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(plain run folder or "", ((skill, run), ...)) from the --policy values; ParameterError for a
    second plain run, a skill named twice or an empty part."""
    from fmb_core.errors import ParameterError

    plain, stages = "", {}
    for value in values:
        skill, sep, run = value.partition("=")
        if not sep:
            if plain:
                raise ParameterError(
                    f"--policy {value}: a second run without SKILL= (already {plain}); name the stages"
                )
            plain = value
            continue
        if not skill or not run:
            raise ParameterError(f"--policy {value!r}: expected SKILL=RUN, e.g. insert=runs/insert_dp")
        if skill in stages:
            raise ParameterError(f"--policy {value}: stage {skill!r} is given twice")
        stages[skill] = run
    return plain, tuple(stages.items())


def parse_in_hand_tolerance(text: str) -> tuple[float, float]:
    """`--in-hand-tolerance MM,DEG` -> (offset [mm], angle [deg]); ParameterError naming the flag."""
    from fmb_core.errors import ParameterError

    parts = [p.strip() for p in str(text).split(",")]
    try:
        offset, angle = (float(p) for p in parts)
    except ValueError:
        raise ParameterError(f"--in-hand-tolerance {text!r}: expected MM,DEG, two numbers (e.g. 2,2)") from None
    return offset, angle
