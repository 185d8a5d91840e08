"""cad.sim_assets: MJCF and URDF of a peg and a board, loaded in real MuJoCo and PyBullet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import trimesh

from cad.board import fmb_board_spec, make_board
from cad.mass import estimate_mass
from cad.peg import PegSpec, make_peg
from cad.shape_family import get_shape
from cad.sim_assets import STATIC_KINDS, inertial_properties, write_mjcf, write_sim_assets, write_urdf
from fmb_core.errors import ParameterError

mujoco = pytest.importorskip("mujoco")
p = pytest.importorskip("pybullet")
pybullet_data = pytest.importorskip("pybullet_data")

DROP_HEIGHT = 0.05  # [m]
REST_TOLERANCE = 0.002  # [m]


def _make_peg():
    return make_peg(PegSpec(get_shape("star"), size="S", length="short"))


def _make_board():
    return make_board(fmb_board_spec("S"))


def _export(part, root: Path) -> dict:
    """STL in mm under root/stl, assets under root/sim; returns write_sim_assets' names."""
    (root / "stl").mkdir(parents=True, exist_ok=True)
    part.mesh().apply_scale(1000.0).export(root / "stl" / f"{part.name}.stl")
    return write_sim_assets(part, root / "sim", f"../stl/{part.name}.stl", estimate_mass(part))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """{"peg"|"board": (part, sim dir, names)}, written once for the module."""
    root = tmp_path_factory.mktemp("assets")
    out = {}
    for key, part in (("peg", _make_peg()), ("board", _make_board())):
        out[key] = (part, root / "sim", _export(part, root))
    return out


@pytest.fixture
def bullet():
    cid = p.connect(p.DIRECT)
    yield cid
    p.disconnect(cid)


def _lowest_z(pieces, position, rotation) -> float:
    """Lowest z [m] of the collision pieces placed at position (3,), rotation (3, 3)."""
    vertices = np.vstack([piece.vertices() for piece in pieces])
    return float((vertices @ np.asarray(rotation).T + position)[:, 2].min())


# --- inertial ---------------------------------------------------------------------------------


def test_inertial_is_uniform_solid_of_given_mass():
    part = _make_peg()
    mesh = part.mesh()
    inertial = inertial_properties(part, 0.03)
    assert inertial.mass == 0.03
    np.testing.assert_allclose(inertial.com, mesh.center_mass, atol=1e-9)
    np.testing.assert_allclose(inertial.inertia, mesh.moment_inertia * 0.03 / mesh.mass, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(inertial.inertia, inertial.inertia.T)
    assert np.all(np.linalg.eigvalsh(inertial.inertia) > 0)


@pytest.mark.parametrize("mass", [0.0, -1.0, float("nan")])
def test_inertial_rejects_bad_mass(mass):
    with pytest.raises(ParameterError, match="mass"):
        inertial_properties(_make_peg(), mass)


def test_rejects_visual_that_is_not_stl(tmp_path):
    part = _make_peg()
    with pytest.raises(ParameterError, match="STL"):
        write_mjcf(part, tmp_path, "peg.obj", inertial_properties(part, 0.03))


# --- MJCF / MuJoCo ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["peg", "board"])
def test_mjcf_compiles_with_pieces_inertial_and_sites(assets, key):
    part, sim, names = assets[key]
    model = mujoco.MjModel.from_xml_path(str(sim / names["mjcf"]))
    body = model.body(part.name)
    inertial = inertial_properties(part, estimate_mass(part))
    n_pieces = len(part.collision_pieces())
    assert model.ngeom == n_pieces + 1
    if part.kind in STATIC_KINDS:  # boards are placed in a scene, not thrown in
        assert model.njnt == 0
    else:
        assert model.njnt == 1 and model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE
    assert body.mass[0] == pytest.approx(inertial.mass, rel=1e-8)
    np.testing.assert_allclose(body.ipos, inertial.com, atol=1e-8)
    np.testing.assert_allclose(np.sort(body.inertia), np.linalg.eigvalsh(inertial.inertia), rtol=1e-6)
    visual = model.geom(f"{part.name}_visual")
    assert (visual.contype[0], visual.conaffinity[0], visual.group[0]) == (0, 0, 2)
    # The STL is in mm: with the right scale the compiled visual mesh has the print volume [m^3].
    mesh_id = visual.dataid[0]
    vert = model.mesh_vert[model.mesh_vertadr[mesh_id] :][: model.mesh_vertnum[mesh_id]]
    face = model.mesh_face[model.mesh_faceadr[mesh_id] :][: model.mesh_facenum[mesh_id]]
    assert trimesh.Trimesh(vert, face, process=False).volume == pytest.approx(part.mesh().volume, rel=1e-6)
    assert model.geom(f"{part.name}_col_{n_pieces - 1}").group[0] == 3
    assert model.nsite == len(part.frames)
    for frame_name, frame in part.frames.items():
        site = model.site(f"{part.name}_{frame_name}")
        np.testing.assert_allclose(site.pos, frame.position, atol=1e-9)
        x, y, z, w = frame.quaternion
        np.testing.assert_allclose(site.quat, (w, x, y, z), atol=1e-8)


def test_mjcf_site_quaternion_is_wxyz(assets):
    part, sim, names = assets["board"]
    model = mujoco.MjModel.from_xml_path(str(sim / names["mjcf"]))
    quat = model.site(f"{part.name}_hole_double_square").quat  # hole rotated 90 deg about +z
    np.testing.assert_allclose(quat, (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)), atol=1e-8)


def test_mjcf_fixed_has_no_joint(assets):
    part, sim, _ = assets["board"]
    path = write_mjcf(part, sim / "fixed", f"../../stl/{part.name}.stl", inertial_properties(part, 0.7), fixed=True)
    model = mujoco.MjModel.from_xml_path(str(path))
    assert model.njnt == 0 and model.body(part.name).mass[0] == pytest.approx(0.7)


def test_mjcf_peg_dropped_on_ground_rests_on_it(assets):
    part, sim, names = assets["peg"]
    world = mujoco.MjSpec()
    world.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.5, 0.5, 0.01])
    child = mujoco.MjSpec.from_file(str(sim / names["mjcf"]))
    world.worldbody.add_frame(pos=[0.0, 0.0, DROP_HEIGHT]).attach_body(child.body(part.name), "obj/", "")
    model = world.compile()
    data = mujoco.MjData(model)
    for _ in range(int(0.5 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    body = model.body(f"obj/{part.name}").id
    lowest = _lowest_z(part.collision_pieces(), data.xpos[body], data.xmat[body].reshape(3, 3))
    assert abs(lowest) < REST_TOLERANCE
    assert np.linalg.norm(data.qvel) < 1e-2


# --- URDF / PyBullet --------------------------------------------------------------------------


def test_collision_obj_is_one_convex_hull_per_piece(assets, bullet):
    part, sim, names = assets["board"]
    obj = (sim / names["collision_obj"]).read_text()
    n_pieces = len(part.collision_pieces())
    assert obj.count("\no piece_") == n_pieces
    # createCollisionShape on a multi-object OBJ builds a compound of one convex hull per object.
    shape = p.createCollisionShape(p.GEOM_MESH, fileName=str(sim / names["collision_obj"]), physicsClientId=bullet)
    body = p.createMultiBody(0.0, shape, physicsClientId=bullet)
    assert len(p.getCollisionShapeData(body, -1, physicsClientId=bullet)) == n_pieces


@pytest.mark.parametrize("key", ["peg", "board"])
def test_urdf_loads_with_inertial_and_compound_collision(assets, bullet, key):
    part, sim, names = assets[key]
    inertial = inertial_properties(part, estimate_mass(part))
    body = p.loadURDF(str(sim / names["urdf"]), flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=bullet)
    link = 0 if part.kind in STATIC_KINDS else -1  # static parts hang from a massless "world" link
    info = p.getDynamicsInfo(body, link, physicsClientId=bullet)
    assert info[0] == pytest.approx(inertial.mass, rel=1e-6)
    np.testing.assert_allclose(info[3], inertial.com, atol=1e-6)
    np.testing.assert_allclose(np.sort(info[2]), np.linalg.eigvalsh(inertial.inertia), rtol=1e-4)
    # loadURDF reports the OBJ's compound as one mesh entry (its hulls are not listed) ...
    (shape,) = p.getCollisionShapeData(body, link, physicsClientId=bullet)
    assert shape[2] == p.GEOM_MESH and shape[4].decode().endswith(names["collision_obj"])


def test_urdf_board_holes_stay_open(assets, bullet):
    # ... but collides per hull: a ray down a hole's centre passes; one hull would fill the holes.
    part, sim, names = assets["board"]
    p.loadURDF(str(sim / names["urdf"]), useFixedBase=True, physicsClientId=bullet)
    hole = part.frames["hole_star"].position
    hit = p.rayTest([hole[0], hole[1], 0.2], [hole[0], hole[1], -0.1], physicsClientId=bullet)[0]
    assert hit[0] == -1
    hit = p.rayTest([0.1, -0.1, 0.2], [0.1, -0.1, -0.1], physicsClientId=bullet)[0]
    assert hit[3][2] == pytest.approx(part.height, abs=REST_TOLERANCE)


def test_urdf_fixed_board_does_not_fall(assets, bullet):
    part, sim, _ = assets["board"]
    path = write_urdf(part, sim / "fixed", f"../../stl/{part.name}.stl", inertial_properties(part, 0.7), fixed=True)
    p.setGravity(0, 0, -9.81, physicsClientId=bullet)
    body = p.loadURDF(str(path), flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=bullet)
    assert p.getNumJoints(body, physicsClientId=bullet) == 1
    for _ in range(24):
        p.stepSimulation(physicsClientId=bullet)
    pos = p.getLinkState(body, 0, physicsClientId=bullet)[4]  # URDF link frame
    np.testing.assert_allclose(pos, (0.0, 0.0, 0.0), atol=1e-6)


def test_urdf_peg_dropped_on_plane_rests_on_it(assets, bullet):
    part, sim, names = assets["peg"]
    p.setGravity(0, 0, -9.81, physicsClientId=bullet)
    p.loadURDF(str(Path(pybullet_data.getDataPath()) / "plane.urdf"), physicsClientId=bullet)
    flags = p.URDF_USE_INERTIA_FROM_FILE
    body = p.loadURDF(str(sim / names["urdf"]), [0.0, 0.0, DROP_HEIGHT], flags=flags, physicsClientId=bullet)
    for _ in range(240):  # 1 s at the default 240 Hz
        p.stepSimulation(physicsClientId=bullet)
    pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=bullet)  # inertial frame
    info = p.getDynamicsInfo(body, -1, physicsClientId=bullet)
    link_pos, link_orn = p.multiplyTransforms(pos, orn, *p.invertTransform(info[3], info[4]))
    rotation = np.reshape(p.getMatrixFromQuaternion(link_orn), (3, 3))
    # PyBullet pads URDF convex hulls by a 1 mm collision margin, so it rests ~1 mm high.
    assert abs(_lowest_z(part.collision_pieces(), link_pos, rotation)) < REST_TOLERANCE


# --- files ------------------------------------------------------------------------------------


def test_write_sim_assets_names_files_in_out_dir(assets):
    part, sim, names = assets["peg"]
    stem = part.name
    assert names == {"mjcf": f"{stem}.xml", "urdf": f"{stem}.urdf", "collision_obj": f"{stem}_collision.obj"}
    assert all((sim / name).is_file() for name in names.values())


def test_same_part_gives_same_bytes(assets, tmp_path):
    for key, make in (("peg", _make_peg), ("board", _make_board)):
        part, sim, names = assets[key]
        again = _export(make(), tmp_path)
        assert again == names
        for name in names.values():
            assert (tmp_path / "sim" / name).read_bytes() == (sim / name).read_bytes(), name
