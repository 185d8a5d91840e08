"""AsyncPolicyRunner with a real tiny diffusion policy on the real simulator: the same actions as the
synchronous runner when decisions are fast, time-aligned prefetched chunks, a caller that never waits
on a slow decision, and a late chunk that holds the arm and is counted."""

import math
import threading
import time

import numpy as np
import pytest

pytest.importorskip("torch", reason="policies need the 'learn' extra (torch)")

from fmb_core.errors import ParameterError  # noqa: E402
from fmb_ros.skill import SkillExecution, State  # noqa: E402
from fmb_ros.world import WorldMirror  # noqa: E402
from policies.runtime.async_runner import AsyncConfig, AsyncPolicyRunner  # noqa: E402
from policies.runtime.controllers import make_controller  # noqa: E402
from policies.runtime.runner import PolicyRunner, RunnerConfig  # noqa: E402
from sim.safety import SafetyFilter, Verdict  # noqa: E402
from tests.fmb_ros.dds import ros_domain_id

pytestmark = [pytest.mark.graph, pytest.mark.train]

BASE = "panda_link0"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from policies.train import train
    from sim.collect import RunSpec, collect
    from tests.policies.conftest import tiny, tiny_training

    root = tmp_path_factory.mktemp("async")
    collect(RunSpec("grasp", families=("rectangle",)), root / "demo", episodes=1, progress=False)
    train([root / "demo"], root / "run", tiny(), tiny_training(steps=2), progress=False, log=lambda m: None)
    return root / "run"


@pytest.fixture(scope="module")
def policy(run_folder):
    from policies.runtime.policy import Policy

    return Policy.load(run_folder, "cpu")


@pytest.fixture()
def env():
    from sim.env import make_env

    e = make_env("grasp", seed=2)
    yield e
    e.close()


class Recorder:
    """A selector that keeps each decision's executed chunk (candidate 0), optionally slowly."""

    def __init__(self, delay: float = 0.0):
        self.delay, self.chunks = delay, []

    def __call__(self, history, chunks) -> int:
        time.sleep(self.delay)
        self.chunks.append(np.asarray(chunks[0]))
        return 0


def make_runner(policy, selector, seed=7) -> PolicyRunner:
    runner = PolicyRunner(policy, RunnerConfig(num_samples=2), selector=selector)
    runner.rng = np.random.default_rng(seed)
    return runner


def rollout(env, runner, steps: int) -> list:
    env.reset(seed=2)
    runner.reset(env)
    actions = []
    for _ in range(steps):
        action = runner.act(env)
        actions.append(action)
        env.step(action)
    return actions


@pytest.mark.slow
def test_fast_decisions_give_the_synchronous_runners_actions(policy, env):
    sync = rollout(env, make_runner(policy, Recorder()), 10)
    wrapped = AsyncPolicyRunner(make_runner(policy, Recorder()), lead=0, wait=30.0)
    try:
        same = rollout(env, wrapped, 10)
    finally:
        wrapped.close()
    np.testing.assert_allclose(np.asarray(same), np.asarray(sync), rtol=1e-5, atol=1e-6)
    assert wrapped.decisions == 3 and wrapped.late_chunks == 0  # action_horizon 4: steps 0, 4, 8


def test_prefetched_chunk_is_used_from_the_row_of_its_step(policy, env):
    """lead 2: the second decision starts at step 2 (two actions left) from obs(2), and from step 4
    on its rows 1 + (4 - 2) ... are executed: planned for the steps they run at."""
    recorder = Recorder()
    wrapped = AsyncPolicyRunner(make_runner(policy, recorder), lead=2, wait=30.0)
    try:
        actions = np.asarray(rollout(env, wrapped, 8))
        assert wrapped.planning_since == 6  # the third decision: two actions before the queue runs out
    finally:
        wrapped.close()
    first = policy.config.obs_horizon - 1
    np.testing.assert_allclose(actions[0:4, :6], recorder.chunks[0][first : first + 4, :6], rtol=1e-5)
    np.testing.assert_allclose(actions[4:8, :6], recorder.chunks[1][first + 2 : first + 6, :6], rtol=1e-5)


class Gate(Recorder):
    """A selector that blocks each decision until the test lets it through: a decision as slow as
    the test wants, without timing assumptions."""

    def __init__(self):
        super().__init__()
        self.passes = threading.Semaphore(0)

    def __call__(self, history, chunks) -> int:
        assert self.passes.acquire(timeout=30.0), "the test never let the decision through"
        return super().__call__(history, chunks)


def let_through(gate: Gate, wrapped: AsyncPolicyRunner) -> None:
    gate.passes.release()
    deadline = time.monotonic() + 30.0
    while not wrapped.chunk_ready:
        assert time.monotonic() < deadline, "the decision did not finish"
        time.sleep(0.01)


def test_slow_decisions_never_block_and_a_late_chunk_holds(policy, env):
    """While a decision runs, `act` returns at once; with the queue empty it returns None (hold) and
    counts one late chunk (not the first of a run), then resumes at the late chunk's row for its step."""
    gate = Gate()
    wrapped = AsyncPolicyRunner(make_runner(policy, gate), lead=1)
    env.reset(seed=2)
    wrapped.reset(env)
    calls, actions = [], []

    def act():
        began = time.perf_counter()
        action = wrapped.act(env)
        calls.append(time.perf_counter() - began)
        actions.append(action)
        if action is not None:
            env.step(action)

    try:
        act(), act()  # steps 0, 1: the first chunk is being computed
        assert actions == [None, None] and wrapped.late_chunks == 0 and wrapped.held_ticks == 2
        let_through(gate, wrapped)
        for _ in range(4):  # steps 2-5: the first chunk from its row for step 2; the next starts at step 5
            act()
        assert wrapped.planning_since == 5
        act(), act()  # steps 6, 7: the queue is empty and the chunk is late: hold, one late chunk
        assert actions[6:] == [None, None] and wrapped.late_chunks == 1 and wrapped.held_ticks == 4
        let_through(gate, wrapped)
        act()  # step 8
    finally:
        wrapped.close()
    assert max(calls) < 0.03, f"act blocked for {max(calls) * 1000:.1f} ms"
    first = policy.config.obs_horizon - 1
    got = np.asarray([a[:6] for a in actions[2:6]])
    np.testing.assert_allclose(got, gate.chunks[0][first + 2 : first + 6, :6], rtol=1e-5)
    np.testing.assert_allclose(actions[8][:6], gate.chunks[1][first + 3, :6], rtol=1e-5)  # started at 5


def test_skill_holds_through_the_safety_filter_while_a_chunk_is_late(run_folder, env):
    controller = make_controller(
        "grasp", checkpoint=str(run_folder), device="cpu", inference="async", async_config=AsyncConfig(lead=1)
    )
    assert isinstance(controller.runner, AsyncPolicyRunner) and "async, lead 1" in controller.description
    controller.runner.runner.selector = Gate()
    controller.runner.runner.num_samples = 2
    env.reset(seed=2)
    world = WorldMirror()
    world.set_tcp(env.last_observation["tcp_pose"].astype(float), 0.0)
    world.q, world.dq = env.last_observation["q"].astype(float), env.last_observation["dq"].astype(float)
    run = SkillExecution("grasp", controller, SafetyFilter(), BASE, max_steps=50)
    try:
        run.start(world.tcp, BASE, world, 0.0)
        began = time.perf_counter()
        tick = run.tick(world, 0.01)
        # the gated chunk never comes before the release below: a tick that waited for it would
        # hang, so any bound tells it did not (its latency is `fmb bench ros`'s to measure)
        assert time.perf_counter() - began < 0.5
        assert tick.state is State.RUNNING and tick.command.verdict is Verdict.LATE and tick.command.holding
        np.testing.assert_allclose(tick.command.pose[:3], world.tcp[:3])  # the measured pose, held
        assert run.message.startswith("holding") and run.step == 1
        controller.runner.runner.selector.passes.release()
    finally:
        controller.runner.close()


def test_bad_settings_are_named(policy, run_folder):
    with pytest.raises(ParameterError, match="ensemble 0"):
        AsyncPolicyRunner(PolicyRunner(policy, RunnerConfig(ensemble=0.5)))
    with pytest.raises(ParameterError, match="lead"):
        AsyncPolicyRunner(PolicyRunner(policy), lead=99)
    with pytest.raises(ParameterError, match="inference"):
        make_controller("grasp", checkpoint=str(run_folder), inference="fast")
    with pytest.raises(ParameterError, match="temperature=-1 is out of range") as raised:
        make_controller("grasp", checkpoint=str(run_folder), runner_config=RunnerConfig(temperature=-1.0))
    assert raised.value.field == "temperature"  # a field of the core, not a flag
    from fmb_ros.params import parameter_message

    with pytest.raises(ParameterError) as raised:
        make_controller("grasp", checkpoint=str(run_folder), runner_config=RunnerConfig(num_samples=0))
    assert raised.value.field == "num_samples"  # the runner's argument; the node's parameter is `candidates`
    assert parameter_message(raised.value).startswith("candidates=0 is out of range")


def test_runner_settings_reach_the_policy_runner(run_folder, env):
    """The skill server's action_horizon, temperature (and guidance) parameters set the runner:
    at temperature 0 every candidate is the same chunk, and a chunk fills 2 actions."""
    controller = make_controller(
        "grasp",
        checkpoint=str(run_folder),
        runner_config=RunnerConfig(num_samples=3, action_horizon=2, temperature=0.0),
        inference="sync",
    )
    runner = controller.runner
    assert runner.action_horizon == 2 and runner.temperature == 0.0
    env.reset(seed=1)
    runner.reset(env)
    runner.observe(env)
    chunks = runner.sample(list(runner.history), seed=5)
    assert chunks.shape[0] == 3
    np.testing.assert_allclose(chunks[0], chunks[2], atol=1e-5)  # equal up to batched float rounding
    runner.act(env)
    assert len(runner.queue) == 1  # 2 actions per chunk, one executed


def test_skill_server_runs_policies_asynchronously_and_reports_late_chunks(run_folder, capfd):
    """In-process node: `inference: async` (the default) wraps the policy; the status carries the
    counters, the adaptive lead and the thread budget (logged at start; the `threads` parameter
    overrides it); `inference: sync` keeps the plain runner; a bad mode is refused with its name."""
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    import os

    from rclpy.parameter import Parameter

    from fmb_ros.skill_server import SkillServerNode

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id())
    nodes = []
    try:
        checkpoint = Parameter("checkpoint", value=str(run_folder))
        nodes.append(SkillServerNode("async_skill", context=ctx, parameter_overrides=[checkpoint]))
        runner = nodes[-1].run.controller.runner
        assert isinstance(runner, AsyncPolicyRunner) and runner.lead == 3
        assert runner.adaptive and runner.period == pytest.approx(0.1)
        values = nodes[-1].status_values("running")
        assert values["late_chunks"] == 0 and values["held_ticks"] == 0
        assert values["threads"] == 1 and values["lead"] == 3 and values["inference_priority"]
        assert "threads 1 (inference; " in capfd.readouterr().err  # the node's log
        forced = [checkpoint, Parameter("threads", value=2), Parameter("inference_adaptive_lead", value=False)]
        nodes.append(SkillServerNode("forced_skill", context=ctx, parameter_overrides=forced))
        assert nodes[-1].status_values("running")["threads"] == 2 and not nodes[-1].run.controller.runner.adaptive
        assert "threads 2 (inference; " in capfd.readouterr().err
        sync = [checkpoint, Parameter("inference", value="sync")]
        nodes.append(SkillServerNode("sync_skill", context=ctx, parameter_overrides=sync))
        assert isinstance(nodes[-1].run.controller.runner, PolicyRunner)
        assert "late_chunks" not in nodes[-1].status_values("running")
        bad = [checkpoint, Parameter("inference", value="fast")]
        nodes.append(SkillServerNode("bad_skill", context=ctx, parameter_overrides=bad))
        assert nodes[-1].run is None and "inference" in nodes[-1].error and "fast" in nodes[-1].error
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_adaptive_lead_follows_the_decision_time(policy, env):
    """Decisions slowed to >= 0.25 s at a 0.1 s period: the lead grows to ceil(1.25 * slowest / period)
    (at least 4: 0.25 s -> 3.125 periods), capped by the chunk (pred_horizon - obs_horizon = 6);
    without `adaptive` it stays where it was set."""
    wrapped = AsyncPolicyRunner(make_runner(policy, Recorder(delay=0.25)), lead=1, wait=30.0, adaptive=True)
    fixed = AsyncPolicyRunner(make_runner(policy, Recorder(delay=0.25)), lead=1, wait=30.0)
    try:
        rollout(env, wrapped, 3)
        rollout(env, fixed, 3)
    finally:
        wrapped.close()
        fixed.close()
    slowest = max(wrapped._recent)
    assert slowest >= 0.25
    assert wrapped.lead_now == min(math.ceil(1.25 * slowest / 0.1), 6) and wrapped.lead_now >= 4
    assert wrapped.max_lead == wrapped.lead_now and wrapped.lead == 1
    assert fixed.lead_now == 1 and fixed.max_lead == 1


def test_inference_thread_asks_for_its_priority(policy):
    """A nice value the OS always grants (lowering needs no privilege) is reported as taken; the
    ROS default (-10) is granted or refused with a reason, never raised."""
    lowered = AsyncPolicyRunner(make_runner(policy, Recorder()), nice=3)
    raised = AsyncPolicyRunner(make_runner(policy, Recorder()), nice=-10)
    try:
        assert lowered.priority == "nice 3"
        assert raised.priority == "nice -10" or raised.priority.startswith("normal priority (nice -10 refused")
    finally:
        lowered.close()
        raised.close()
    with pytest.raises(ParameterError, match="nice"):
        AsyncPolicyRunner(make_runner(policy, Recorder()), nice=40)
