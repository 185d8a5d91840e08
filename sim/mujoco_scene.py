"""MuJoCo scenes composed in code with MjSpec: the Panda from its URDF, parts from their cad MJCF.

The robot keeps the URDF's masses but takes its link inertias from the link meshes as uniform
solids (the URDF gives every link 0.1 kg m^2, ten times a real Panda wrist's, which makes FMB's
rotational gains oscillate); static links stay bodies, so the hand is its own body. Arm joints get
motor actuators (torque control at the physics rate), the fingers force-limited position
actuators, link7 a `tcp` site at `panda_grasptarget`. Robot geoms collide with the world but not
with each other. MuJoCo's quaternions are wxyz: converted here and in the backend only.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim import panda
from sim.assets import part_assets
from sim.scene import SceneSpec
from sim.spatial import compose, pose, wxyz_to_xyzw, xyzw_to_wxyz

FINGER_KP = 2000.0  # [N/m]: with a 70 N force limit, a firm grasp on anything the fingers close on


def look_at_quat(position, target, up) -> np.ndarray:
    """MuJoCo camera quaternion (wxyz): looks along -z, image up along +y."""
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    z = -forward
    x = np.cross(np.asarray(up, float), z)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross([1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    mat = np.stack([x, y, z], axis=1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.ravel())
    return quat


def scene_spec(scene: SceneSpec) -> mujoco.MjSpec:
    """The whole world for `scene`: table, lights, the Panda with its actuators and TCP site, every
    part attached from its cad MJCF as \"<key>/...\" (fixed parts as mocap bodies), and the cameras."""
    spec = mujoco.MjSpec.from_string(panda.urdf_text_absolute())
    spec.compiler.fusestatic = False
    spec.compiler.discardvisual = False  # the URDF importer sets it; it would drop part visuals
    # The URDF gives every link an inertia of 0.1 kg m^2 (ten times a real Panda wrist's),
    # which makes FMB's rotational gains oscillate. Keep its masses, take inertia from the
    # link meshes as uniform solids, and give the frame-only links no inertia at all.
    for body in spec.bodies:
        if not body.name.startswith("panda_"):
            continue
        if body.geoms:
            for g in body.geoms:
                g.mass = body.mass / len(body.geoms)
        else:
            body.mass = 0.0
            body.inertia = [0.0, 0.0, 0.0]
            body.fullinertia = [np.nan] * 6  # the URDF importer's fullinertia overrides `inertia`
    spec.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_TRUE
    spec.modelname = "fmb_scene"
    spec.memory = 64 * 2**20  # [bytes] room for thousands of contacts among exact collision pieces
    opt = spec.option
    opt.timestep = scene.physics.timestep
    opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.impratio = 10.0
    spec.visual.global_.offwidth = max([640] + [c.width for c in scene.cameras])
    spec.visual.global_.offheight = max([480] + [c.height for c in scene.cameras])
    world = spec.worldbody
    world.add_light(pos=[0.5, 0.0, 1.5], dir=[0.0, 0.0, -1.0], diffuse=[0.7, 0.7, 0.7], castshadow=False)
    world.add_light(pos=[0.0, -1.0, 1.0], dir=[0.5, 1.0, -1.0], diffuse=[0.3, 0.3, 0.3], castshadow=False)
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[1.5, 1.5, 0.01],
        rgba=[0.55, 0.55, 0.6, 1.0],
        contype=1,
        conaffinity=3,
    )
    for i, joint in enumerate(panda.ARM_JOINTS):
        j = spec.joint(joint)
        j.damping = [0.1, 0.0, 0.0]  # MuJoCo 4: [linear, quadratic, cubic] coefficients
        j.armature = 0.1
        limit = panda.TORQUE_LIMITS[i]
        spec.add_actuator(
            name=f"{joint}_motor",
            target=joint,
            trntype=mujoco.mjtTrn.mjTRN_JOINT,
            ctrlrange=[-limit, limit],
            ctrllimited=True,
        )
    for joint in panda.FINGER_JOINTS:
        spec.joint(joint).damping = [5.0, 0.0, 0.0]
        spec.joint(joint).armature = 0.01
        act = spec.add_actuator(name=f"{joint}_pos", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=FINGER_KP)
        act.forcerange = [-panda.GRIPPER_FORCE, panda.GRIPPER_FORCE]
        act.forcelimited = True
        act.ctrlrange = [0.0, panda.GRIPPER_OPEN / 2]
        act.ctrllimited = True
    tcp = panda.tcp_in_link7()
    link7 = spec.body("panda_link7")
    link7.add_site(name="tcp", pos=tcp[:3], quat=xyzw_to_wxyz(tcp[3:]), group=4)
    # Robot links collide with the world but not with each other (FMB's motions keep the arm
    # clear of itself, and skipping those pairs saves ~10 % of a physics step).
    for body in spec.bodies:
        if body.name.startswith("panda_"):
            for g in body.geoms:
                g.contype, g.conaffinity = 2, 1
    for key in ("panda_leftfinger", "panda_rightfinger"):
        for g in spec.body(key).geoms:
            # Torsional friction as of rubber-padded fingers: a 70 N grasp resists ~3.5 N m of
            # twist about the finger axis, so an off-centre peg does not swing in the grasp.
            g.friction = [max(1.0, scene.physics.friction), 0.05, 0.0001]
            g.condim = 4
            # Stiff finger contacts (the fingers' parameters win by priority): with MuJoCo's
            # default solref (0.02 s) a 70 N squeeze sank the pads ~4 mm into a light peg, and a
            # star or a thin peg held on slanted faces then squirted out of the grasp.
            g.priority = 1
            g.solref = [0.004, 1.0]  # [s, -]: time constant at twice the 2 ms physics step
            g.solimp = [0.95, 0.99, 0.001, 0.5, 2.0]
    for obj in scene.objects:
        child = mujoco.MjSpec.from_file(str(part_assets(obj.part).mjcf))
        frame = world.add_frame()
        frame.attach_body(child.body(obj.part.name), f"{obj.key}/", "")
        body = spec.body(f"{obj.key}/{obj.part.name}")
        if obj.fixed:
            body.mocap = True
        for site in _subtree_sites(body):
            site.group = 4  # frames are for code, not for the cameras
        for g in _subtree_geoms(body):
            if g.contype or g.conaffinity:
                g.contype, g.conaffinity = 1, 3  # objects collide with objects and the robot
                g.friction = [scene.physics.friction, 0.005, 0.0001]
                g.condim = 4
    for cam in scene.cameras:
        if cam.on_hand:
            cam_in_tcp = pose(cam.position, wxyz_to_xyzw(look_at_quat(cam.position, cam.target, cam.up)))
            cam_in_link7 = compose(tcp, cam_in_tcp)
            link7.add_camera(name=cam.name, pos=cam_in_link7[:3], quat=xyzw_to_wxyz(cam_in_link7[3:]), fovy=cam.fovy)
        else:
            world.add_camera(
                name=cam.name,
                pos=list(cam.position),
                quat=look_at_quat(cam.position, cam.target, cam.up),
                fovy=cam.fovy,
            )
    return spec


def _subtree_geoms(body):
    geoms = list(body.geoms)
    for child in body.bodies:
        geoms.extend(_subtree_geoms(child))
    return geoms


def _subtree_sites(body):
    sites = list(body.sites)
    for child in body.bodies:
        sites.extend(_subtree_sites(child))
    return sites
