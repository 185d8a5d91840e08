"""The PyBullet backend, in real PyBullet: kinematics, control, contacts, cameras, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cad.peg import PegSpec
from cad.shape_family import get_shape
from sim import panda
from sim.assets import part_assets
from sim.backend import make_backend
from sim.controller import CartesianImpedance
from sim.env import make_env
from sim.exceptions import SimError, UnknownNameError
from sim.experts import make_expert
from sim.objects import ObjectPool, board_for, peg_part
from sim.pointcloud import camera_points
from sim.scene import DEFAULT_CAMERAS, SceneObject, SceneSpec
from sim.spatial import compose, pose
from sim.tasks.geometry import inserted_peg_pose

p = pytest.importorskip("pybullet")

FAMILIES = ("round", "star", "double_square")


@pytest.fixture(scope="module")
def robot():
    """A backend holding the Panda alone, at its rest posture."""
    backend = make_backend("pybullet")
    backend.load(SceneSpec([]))
    backend.reset(panda.HOME_Q, panda.GRIPPER_OPEN, {})
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def env():
    e = make_env("insert", backend="pybullet", objects=ObjectPool.fmb(families=FAMILIES, sizes=("M",)), seed=0)
    yield e
    e.close()


def _hold(backend, controller, target, steps, q_rest=panda.HOME_Q):
    """Track `target` for `steps` physics steps; returns the TCP position error [m] at each."""
    errors = []
    for _ in range(steps):
        s = backend.robot_state()
        backend.step(controller.torques(s.tcp_pose, target, s.jacobian, s.q, s.dq, q_rest, s.bias), 0.0)
        errors.append(np.linalg.norm(s.tcp_pose[:3] - target[:3]))
    return errors


# --- robot ------------------------------------------------------------------------------------


def test_forward_kinematics_is_the_state_and_leaves_it_alone(robot):
    robot.reset(panda.HOME_Q, panda.GRIPPER_OPEN, {})
    before = robot.robot_state()
    tcp, jac = robot.forward_kinematics(panda.HOME_Q)
    np.testing.assert_allclose(tcp, before.tcp_pose, atol=1e-9)
    np.testing.assert_allclose(jac, before.jacobian, atol=1e-9)
    q = panda.HOME_Q + 0.2
    tcp, jac = robot.forward_kinematics(q)
    after = robot.robot_state()
    for field in before._fields:
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field), err_msg=field)
    # Linear rows against finite differences; angular rows are unit joint axes.
    eps = 1e-4
    numeric = np.stack([(robot.forward_kinematics(q + eps * np.eye(7)[i])[0][:3] - tcp[:3]) / eps for i in range(7)], 1)
    np.testing.assert_allclose(jac[:3], numeric, atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(jac[3:], axis=0), 1.0, atol=1e-9)


def test_bias_holds_the_arm_still(robot):
    robot.reset(panda.HOME_Q, panda.GRIPPER_OPEN, {})
    for _ in range(250):  # 0.5 s of gravity compensation only
        robot.step(robot.robot_state().bias, panda.GRIPPER_OPEN)
    s = robot.robot_state()
    np.testing.assert_allclose(s.q, panda.HOME_Q, atol=1e-4)
    assert np.abs(s.dq).max() < 1e-3
    assert s.gripper_width == pytest.approx(panda.GRIPPER_OPEN, abs=1e-4)


def test_controller_tracks_a_5cm_step(robot):
    robot.reset(panda.HOME_Q, panda.GRIPPER_OPEN, {})
    target = robot.robot_state().tcp_pose.copy()
    target[:3] += [0.05, 0.0, 0.0]
    errors = _hold(robot, CartesianImpedance(torque_limits=panda.TORQUE_LIMITS), target, 750)  # 1.5 s
    assert errors[-1] < 0.002, errors[::50]
    assert max(errors[-50:]) < 0.002  # settled, not passing through


def test_link_inertias_come_from_the_meshes(robot):
    c = robot._client
    hand = p.getDynamicsInfo(robot._robot, robot._hand, physicsClientId=c)
    assert hand[0] == pytest.approx(0.81)  # URDF mass kept
    assert max(hand[2]) < 0.01  # not the URDF's 0.1 kg m^2
    link7 = p.getDynamicsInfo(robot._robot, robot._arm[-1], physicsClientId=c)
    assert max(link7[2]) == pytest.approx(0.1, abs=0.005)  # its rotor


def test_fingers_keep_a_pushed_part_centred(env):
    # Two saturated 70 N position motors alone would let a side push slide the grasp sideways.
    env.reset(seed=0)
    backend, c = env.backend, env.backend._client
    side = Rotation.from_quat(backend.robot_state().tcp_pose[3:]).apply([0.0, 20.0, 0.0])  # [N] along the closing axis
    peg = backend._bodies["peg"][0]
    for _ in range(100):
        p.applyExternalForce(
            peg, -1, side.tolist(), backend.object_pose("peg")[:3].tolist(), p.WORLD_FRAME, physicsClientId=c
        )
        backend.step(backend.robot_state().bias, 0.0)
    left, right = (s[0] for s in p.getJointStates(backend._robot, backend._fingers, physicsClientId=c))
    assert abs(left - right) < 5e-4


# --- parts and contacts ---------------------------------------------------------------------------


def test_pegs_rest_on_the_table_and_drop_through_their_holes():
    from sim.pybullet_assets import read_part_urdf

    # With PyBullet's default 1 mm collision margin a peg would float 1 mm up and stick on the rim.
    spec = PegSpec(get_shape("star"), size="M", length="short")
    peg = peg_part(spec)
    board, hole_key = board_for(spec, ObjectPool.fmb().clearance)
    backend = make_backend("pybullet")
    objects = [SceneObject("board", board, fixed=True), SceneObject("peg", peg), SceneObject("spare", peg)]
    backend.load(SceneSpec(objects))
    board_pose = pose([0.5, -0.2, 0.0])
    frame = board.frames[hole_key]
    hole = compose(board_pose, pose(frame.position, frame.quaternion))
    spare = pose([0.45, 0.25, 0.05], Rotation.from_euler("x", 0.3).as_quat())
    poses = {"board": board_pose, "peg": inserted_peg_pose(hole, spec, depth=-0.003), "spare": spare}
    backend.reset(panda.HOME_Q, panda.GRIPPER_OPEN, poses)
    body, c = backend._bodies["spare"][0], backend._client
    mass, _, moments, com = p.getDynamicsInfo(body, -1, physicsClientId=c)[:4]
    urdf = read_part_urdf(part_assets(peg).urdf, peg.name)
    assert mass == pytest.approx(urdf.mass) and p.getDynamicsInfo(body, -1, physicsClientId=c)[-1] == 0.0
    np.testing.assert_allclose(np.sort(moments), np.linalg.eigvalsh(urdf.inertia), rtol=1e-6)
    np.testing.assert_allclose(com, urdf.com, atol=1e-9)
    np.testing.assert_allclose(backend.object_pose("board"), board_pose, atol=1e-9)
    np.testing.assert_allclose(backend.object_pose("spare"), spare, atol=1e-9)
    for _ in range(500):  # 1 s
        backend.step(backend.robot_state().bias, panda.GRIPPER_OPEN)
    vertices = np.vstack([piece.vertices() for piece in peg.collision_pieces()])
    rest = backend.object_pose("spare")
    lowest = (Rotation.from_quat(rest[3:]).apply(vertices) + rest[:3])[:, 2].min()
    assert abs(lowest) < 0.0005
    inside = backend.object_pose("peg")
    tip = inside[:3] + spec.length_m * Rotation.from_quat(inside[3:]).apply([0.0, 0.0, 1.0])
    assert hole[2] - tip[2] > 0.04  # fell through the 0.5 mm clearance onto the table
    np.testing.assert_allclose(backend.object_pose("board"), board_pose, atol=1e-9)
    backend.close()


def test_grasped_peg_touches_both_fingers_and_weighs_on_the_hand(env):
    obs, info = env.reset(seed=0)
    assert env.touching("left_finger", "peg") and env.touching("right_finger", "peg")
    assert not env.touching("peg", "board")
    body = env.backend._bodies["peg"][0]
    weight = p.getDynamicsInfo(body, -1, physicsClientId=env.backend._client)[0] * 9.81
    # The TCP's z points down: the peg pulls the hand along +z.
    np.testing.assert_allclose(obs["wrench"][:3], [0.0, 0.0, weight], atol=0.05 * weight + 1e-3)
    with pytest.raises(UnknownNameError, match="peg"):
        env.backend.touching("peg", "cup")
    with pytest.raises(UnknownNameError, match="board"):
        env.backend.object_pose("cup")


@pytest.mark.slow
def test_insert_expert_succeeds(env):
    expert = make_expert("insert", seed=0)
    outcomes = []
    for seed in range(5):
        env.reset(seed=seed)
        expert.reset(env)
        for _ in range(env.task.max_steps):
            _, _, terminated, truncated, info = env.step(expert.act(env))
            if terminated or truncated:
                break
        outcomes.append((info["episode"]["peg"], info["success"], info["metrics"]))
    assert sum(success for _, success, _ in outcomes) >= 4, outcomes


# --- determinism and snapshots ------------------------------------------------------------------


def _episode(env, seed, steps=5):
    obs, _ = env.reset(seed=seed)
    expert = make_expert("insert", seed=0)
    expert.reset(env)
    return [obs] + [env.step(expert.act(env))[0] for _ in range(steps)]


def test_reset_is_deterministic(env):
    first = _episode(env, 3)
    _episode(env, 4)  # contacts of another episode must not leak into the next
    again = _episode(env, 3)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_save_and_restore_state(env):
    env.reset(seed=1)
    backend = env.backend
    snapshot = backend.save_state()
    before, peg = backend.robot_state(), backend.object_pose("peg")

    def run():
        for _ in range(100):
            s = backend.robot_state()
            backend.step(s.bias + 0.5, 0.0)
        return backend.robot_state().q, backend.object_pose("peg")

    original = run()
    backend.restore_state(snapshot)
    after = backend.robot_state()
    for field in before._fields:
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field), err_msg=field)
    np.testing.assert_array_equal(backend.object_pose("peg"), peg)
    first = run()
    backend.restore_state(snapshot)
    second = run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)  # every run from a snapshot is the same ...
    np.testing.assert_allclose(first[0], original[0], atol=1e-3)  # ... and close to the one it was taken in
    with pytest.raises(SimError, match="snapshot"):
        backend.restore_state("not a snapshot")


# --- cameras ------------------------------------------------------------------------------------


def test_render_shapes_and_depth_agree_with_the_camera_pose(env):
    env.reset(seed=2)
    for camera in (c.resized(96, 72) for c in DEFAULT_CAMERAS):
        rgb, depth = env.backend.render(camera)
        assert rgb.shape == (72, 96, 3) and rgb.dtype == np.uint8
        assert depth.shape == (72, 96) and depth.dtype == np.float32
        assert np.all(np.isfinite(depth)) and np.all(depth > 0)
        assert rgb.std() > 5  # not a blank image
        points = camera_points(camera, env.backend.camera_pose(camera), rgb, depth)
        low = points[(points[:, 2] < 0.01) & (depth.reshape(-1) < 5), 2]  # the table, and the board's foot
        assert len(low) > 100, camera.name  # the table is in view ...
        assert np.percentile(np.abs(low), 90) < 1e-4, camera.name  # ... and back-projects onto z = 0


@pytest.mark.parametrize("task", ["grasp", "rotate", "regrasp", "place_on_fixture"])
def test_every_task_runs_on_pybullet(task):
    """The same task and expert code runs on PyBullet (experts measured at 8-10 of 10 there)."""
    from sim.experts import make_expert
    from sim.rollout import run_episode

    env = make_env(task, backend="pybullet")
    try:
        results = [run_episode(env, make_expert(task, seed=s), s) for s in range(3)]
    finally:
        env.close()
    assert sum(r.success for r in results) >= 2, [r.info["metrics"] for r in results]
