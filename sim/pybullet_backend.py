"""PyBullet backend: the Panda and the parts in a DIRECT client, the arm torque-controlled per step.

Robot. A rewritten copy of the Panda URDF (`sim.pybullet_assets.panda_urdf_text`): link inertias are those of the
collision meshes as uniform solids with the URDF masses (the file's 0.1 kg m^2 everywhere makes
FMB's rotational impedance oscillate; the MuJoCo backend does the same), and each arm link carries
a rotor on its joint axis in place of MuJoCo's joint armature, which PyBullet lacks (without it
the controller's damping makes the light wrist chatter at 500 Hz). The arm's velocity motors are
off and it is driven with TORQUE_CONTROL; the fingers are force-limited position motors coupled by
a gear constraint (the URDF's <mimic>, which PyBullet ignores). A second, hidden DIRECT client
holding only the robot answers `forward_kinematics`, so inverse kinematics never touches the
simulated state (no velocities, contact caches or motor targets to put back).

Parts. Built with `createMultiBody` from their cad URDF: the collision OBJ (a compound of one convex
hull per piece) with a zero collision margin (PyBullet pads hulls by 1 mm, more than the 0.5 mm
peg/hole clearance), the STL visual, and the inertial at its COM and principal axes. Fixed parts
are static bodies (mass 0) moved per episode. PyBullet reports a body's inertial frame; poses are
converted to the part's frame here only.

Contacts. PyBullet multiplies the two bodies' friction coefficients where MuJoCo takes the larger:
`_friction` picks per-body values whose products are MuJoCo's. Closest points are kept within 1 mm
only (PyBullet's 20 mm makes ~1000 contact points per peg in a hole), and the contact ERP is raised
so that a 70 N grasp does not sink into the part.

Each physics step is solved in `SUBSTEPS` sub-steps of timestep / SUBSTEPS (the torques held). The
assembly parts weigh 17-100 g and the arm presses them with tens of newtons: at 2 ms a step the
contact solver leaves penetrations of order F dt^2 / m (millimetres, in a joint with 0.5 mm of
clearance), and PyBullet's multibody contacts undo them by velocity (ERP, no split impulse), which
throws the parts out of their sockets after the release. Four sub-steps cut that 16-fold (the
contact ERP per sub-step is a quarter of the 0.8 per step used before, the same 400 /s): a
finished tower, bridge or comb whose top part is pushed down with 20-100 N for 2 s stays within
2 mm of its goal (with one sub-step 10 of these 12 cases, 20, 50 and 100 N on four parts, threw
parts a metre or more). They cost about three times the simulation time.
"""

from __future__ import annotations

import tempfile
import weakref
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from sim import panda
from sim.assets import part_assets
from sim.backend import Backend, RobotState
from sim.exceptions import SimError, UnknownNameError
from sim.pybullet_assets import panda_urdf_text, read_part_urdf
from sim.scene import CameraSpec, SceneSpec
from sim.spatial import compose, inverse, pose


def _import_pybullet_quietly():
    """pybullet prints its build time on stdout when imported; send that to stderr so that
    commands printing JSON on stdout (`fmb bench sim --backend pybullet --json`) stay parseable."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        import pybullet
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return pybullet


p = _import_pybullet_quietly()

HAND_LINKS = ("panda_hand", "panda_leftfinger", "panda_rightfinger")
TABLE_COLOUR = (0.55, 0.55, 0.6, 1.0)
NEAR, FAR = 0.01, 10.0  # [m] camera clipping planes; the background reads FAR
ARM_DAMPING = 0.1  # [N m s/rad] joint damping (as the MuJoCo backend)
GEAR_FORCE = 100.0  # [N] strength of the coupling between the two fingers
CONTACT_THRESHOLD = 1e-3  # [m] closest points kept as contacts
CONTACT_ERP = 0.2  # share of a penetration undone per sub-step: 400 /s, as 0.8 per 2 ms step did
# before the sub-steps (PyBullet's 0.08 per 2 ms lets a grasp sink in)
TOUCH_DISTANCE = 1e-4  # [m] contact points closer than this count as touching
SUBSTEPS = 4  # solver sub-steps per physics step (module docstring, "Contacts")


class _Friction(NamedTuple):
    """Per-body (lateral, spinning) friction coefficients of each kind of body."""

    objects: tuple[float, float]
    robot: tuple[float, float]
    table: tuple[float, float]


def _friction(mu: float) -> _Friction:
    """Coefficients whose pairwise products are MuJoCo's combined ones: `mu` between objects,
    max(1, mu) between an object and the robot or the table; torsional 5 mm, 10 mm on a finger."""
    lateral, spinning = np.sqrt(mu), np.sqrt(0.005)
    grip = max(1.0, mu) / lateral
    return _Friction((lateral, spinning), (grip, 0.01 / spinning), (grip, spinning))


class _Session:
    """One connected pair of clients; snapshots check it is still theirs and alive."""

    def __init__(self):
        self.client = _connect()
        self.fk_client = _connect()
        self.alive = True


class _Snapshot:
    """A `saveState` id, removed from its client when the snapshot is garbage collected."""

    def __init__(self, session: _Session):
        self.session = session
        self.id = p.saveState(physicsClientId=session.client)
        weakref.finalize(self, _remove_state, session, self.id)


def _remove_state(session: _Session, state_id: int) -> None:
    if session.alive:
        p.removeState(state_id, physicsClientId=session.client)


def _connect() -> int:
    client = p.connect(p.DIRECT)
    if client < 0:
        raise SimError("pybullet could not start a DIRECT client")
    return client


class PybulletBackend(Backend):
    """See module docstring."""

    name = "pybullet"

    def __init__(self):
        self._session: _Session | None = None
        self._signature = None

    # -- building ---------------------------------------------------------------------------
    def load(self, scene: SceneSpec) -> None:
        if self._signature == scene.signature():
            return
        self.close()
        self.scene = scene
        self._session = _Session()
        self._client, self._fk_client = self._session.client, self._session.fk_client
        self._robot = _load_robot(self._client)
        self._fk_robot = _load_robot(self._fk_client)
        self._index()
        self._configure_robot(scene)
        self._build_world(scene)
        self._pristine = p.saveState(physicsClientId=self._client)
        self._signature = scene.signature()

    def _index(self) -> None:
        c, robot = self._client, self._robot
        joints, links = {}, {}
        for j in range(p.getNumJoints(robot, physicsClientId=c)):
            info = p.getJointInfo(robot, j, physicsClientId=c)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
        self._arm = [joints[n] for n in panda.ARM_JOINTS]
        self._fingers = [joints[n] for n in panda.FINGER_JOINTS]
        self._movable = sorted(self._arm + self._fingers)  # PyBullet's DoF order
        self._arm_dof = np.array([self._movable.index(j) for j in self._arm])
        self._finger_dof = np.array([self._movable.index(j) for j in self._fingers])
        self._tcp = links["panda_grasptarget"]
        self._hand = links["panda_hand"]
        self._hand_rgba = next(v[7] for v in p.getVisualShapeData(robot, physicsClientId=c) if v[1] == self._hand)
        self._hand_links = {links[n] for n in HAND_LINKS}
        self._robot_links = list(links.values())
        # calculateJacobian takes its point in the link's inertial frame: there, the link origin.
        info = p.getDynamicsInfo(robot, self._tcp, physicsClientId=c)
        self._tcp_local = list(p.invertTransform(info[3], info[4])[0])
        self._zeros = [0.0] * len(self._movable)

    def _configure_robot(self, scene: SceneSpec) -> None:
        c, robot = self._client, self._robot
        lateral, spinning = _friction(scene.physics.friction).robot
        for link in [-1, *self._robot_links]:
            p.changeDynamics(
                robot,
                link,
                linearDamping=0.0,
                angularDamping=0.0,
                lateralFriction=lateral,
                spinningFriction=spinning,
                physicsClientId=c,
            )
        for j in self._arm:
            p.changeDynamics(robot, j, jointDamping=ARM_DAMPING, physicsClientId=c)
        p.setJointMotorControlArray(
            robot, self._arm, p.VELOCITY_CONTROL, forces=[0.0] * len(self._arm), physicsClientId=c
        )
        # One drive moves both fingers: without the coupling, two saturated position motors let a
        # held part slide sideways between them.
        gear = p.createConstraint(
            robot,
            self._fingers[0],
            robot,
            self._fingers[1],
            p.JOINT_GEAR,
            [1, 0, 0],
            [0, 0, 0],
            [0, 0, 0],
            physicsClientId=c,
        )
        p.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=GEAR_FORCE, physicsClientId=c)

    def _build_world(self, scene: SceneSpec) -> None:
        c = self._client
        p.setTimeStep(scene.physics.timestep, physicsClientId=c)
        self._timestep = scene.physics.timestep
        p.setGravity(0.0, 0.0, -9.81, physicsClientId=c)
        p.setPhysicsEngineParameter(
            numSolverIterations=50,
            numSubSteps=SUBSTEPS,
            deterministicOverlappingPairs=1,
            contactERP=CONTACT_ERP,
            contactBreakingThreshold=CONTACT_THRESHOLD,
            physicsClientId=c,
        )
        friction = _friction(scene.physics.friction)
        plane = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=c)
        slab = p.createVisualShape(
            p.GEOM_BOX,
            halfExtents=[1.5, 1.5, 0.005],
            visualFramePosition=[0, 0, -0.005],
            rgbaColor=TABLE_COLOUR,
            physicsClientId=c,
        )
        table = p.createMultiBody(0.0, plane, slab, physicsClientId=c)
        p.changeDynamics(
            table, -1, lateralFriction=friction.table[0], spinningFriction=friction.table[1], physicsClientId=c
        )
        self._bodies: dict[str, tuple[int, int]] = {
            "left_finger": (self._robot, self._fingers[0]),
            "right_finger": (self._robot, self._fingers[1]),
        }
        self._inertial_in_part: dict[str, np.ndarray] = {}  # key -> (7,) body inertial frame
        self._nominal: dict[str, tuple[float, np.ndarray]] = {}  # key -> (mass, principal moments)
        for obj in scene.objects:
            body, inertial = self._add_part(obj.part, obj.fixed, friction.objects)
            self._bodies[obj.key] = (body, -1)
            self._inertial_in_part[obj.key] = inertial
            self._nominal[obj.key] = self._last_nominal

    def _add_part(self, part, fixed: bool, friction: tuple[float, float]) -> tuple[int, np.ndarray]:
        c = self._client
        link = read_part_urdf(part_assets(part).urdf, part.name)
        col = p.createCollisionShape(p.GEOM_MESH, fileName=str(link.collision), physicsClientId=c)
        vis = p.createVisualShape(
            p.GEOM_MESH, fileName=str(link.visual), meshScale=[0.001] * 3, rgbaColor=link.rgba, physicsClientId=c
        )
        mass, inertial, moments = 0.0, pose([0.0, 0.0, 0.0]), None
        if not fixed:
            moments, axes = np.linalg.eigh(link.inertia)
            if np.linalg.det(axes) < 0:
                axes[:, 0] = -axes[:, 0]
            mass, inertial = link.mass, pose(link.com, Rotation.from_matrix(axes).as_quat())
        body = p.createMultiBody(
            mass,
            col,
            vis,
            baseInertialFramePosition=inertial[:3],
            baseInertialFrameOrientation=inertial[3:],
            physicsClientId=c,
        )
        p.changeDynamics(
            body,
            -1,
            collisionMargin=0.0,
            lateralFriction=friction[0],
            spinningFriction=friction[1],
            linearDamping=0.0,
            angularDamping=0.0,
            physicsClientId=c,
        )
        if moments is not None:
            p.changeDynamics(body, -1, localInertiaDiagonal=moments.tolist(), physicsClientId=c)
        self._last_nominal = (mass, np.zeros(3) if moments is None else np.asarray(moments, float))
        return body, inertial

    # -- state ------------------------------------------------------------------------------
    def reset(self, q, gripper_width, object_poses) -> None:
        c, robot = self._client, self._robot
        p.restoreState(self._pristine, physicsClientId=c)  # no contact cache survives an episode
        for j, value in zip(self._arm, np.asarray(q, float)):
            p.resetJointState(robot, j, float(value), 0.0, physicsClientId=c)
        for j in self._fingers:
            p.resetJointState(robot, j, gripper_width / 2, 0.0, physicsClientId=c)
        self._command_fingers(gripper_width)
        for key, value in object_poses.items():
            body = self._object_body(key)
            inertial = compose(np.asarray(value, float), self._inertial_in_part[key])
            p.resetBasePositionAndOrientation(body, inertial[:3], inertial[3:], physicsClientId=c)
            p.resetBaseVelocity(body, [0.0] * 3, [0.0] * 3, physicsClientId=c)

    def _object_body(self, key: str) -> int:
        if key not in self._inertial_in_part:
            raise UnknownNameError(f"unknown object {key!r}; known: {', '.join(self._inertial_in_part) or 'none'}")
        return self._bodies[key][0]

    def _command_fingers(self, width: float, ramp: bool = False) -> None:
        half = float(np.clip(width / 2, 0.0, panda.GRIPPER_OPEN / 2))
        if ramp:  # the target moves at the hand's rated speed, as in the MuJoCo backend
            step = panda.FINGER_SPEED * self._timestep
            half = self._finger_ctrl + float(np.clip(half - self._finger_ctrl, -step, step))
        self._finger_ctrl = half
        p.setJointMotorControlArray(
            self._robot,
            self._fingers,
            p.POSITION_CONTROL,
            targetPositions=[half, half],
            forces=[panda.GRIPPER_FORCE] * 2,
            physicsClientId=self._client,
        )

    def robot_state(self) -> RobotState:
        c, robot = self._client, self._robot
        states = p.getJointStates(robot, self._movable, physicsClientId=c)
        q_all, dq_all = [s[0] for s in states], [s[1] for s in states]
        lin, ang = p.calculateJacobian(robot, self._tcp, self._tcp_local, q_all, dq_all, self._zeros, physicsClientId=c)
        jac = np.vstack([np.asarray(lin)[:, self._arm_dof], np.asarray(ang)[:, self._arm_dof]])  # (6, 7)
        bias = np.asarray(p.calculateInverseDynamics(robot, q_all, dq_all, self._zeros, physicsClientId=c))
        link = p.getLinkState(robot, self._tcp, computeForwardKinematics=True, physicsClientId=c)
        q, dq = np.asarray(q_all), np.asarray(dq_all)
        return RobotState(
            q=q[self._arm_dof],
            dq=dq[self._arm_dof],
            tcp_pose=np.array(link[4] + link[5]),
            tcp_twist=jac @ dq[self._arm_dof],
            jacobian=jac,
            bias=bias[self._arm_dof],
            gripper_width=float(q[self._finger_dof].sum()),
        )

    def forward_kinematics(self, q):
        c, robot = self._fk_client, self._fk_robot
        q_all = list(self._zeros)
        for i, value in zip(self._arm_dof, np.asarray(q, float)):
            q_all[i] = float(value)
        for j, value in zip(self._movable, q_all):
            p.resetJointState(robot, j, value, 0.0, physicsClientId=c)
        link = p.getLinkState(robot, self._tcp, computeForwardKinematics=True, physicsClientId=c)
        lin, ang = p.calculateJacobian(
            robot, self._tcp, self._tcp_local, q_all, self._zeros, self._zeros, physicsClientId=c
        )
        jac = np.vstack([np.asarray(lin)[:, self._arm_dof], np.asarray(ang)[:, self._arm_dof]])
        return np.array(link[4] + link[5]), jac

    def step(self, torques, gripper_width) -> None:
        c = self._client
        p.setJointMotorControlArray(
            self._robot, self._arm, p.TORQUE_CONTROL, forces=[float(t) for t in torques], physicsClientId=c
        )
        self._command_fingers(gripper_width, ramp=True)
        p.stepSimulation(physicsClientId=c)

    def object_pose(self, key: str) -> np.ndarray:
        body = self._object_body(key)
        position, quat = p.getBasePositionAndOrientation(body, physicsClientId=self._client)
        return compose(pose(position, quat), inverse(self._inertial_in_part[key]))

    def wrench(self) -> np.ndarray:
        c, robot = self._client, self._robot
        link = p.getLinkState(robot, self._tcp, computeForwardKinematics=True, physicsClientId=c)
        tcp_pos, tcp_rot = np.array(link[4]), np.reshape(p.getMatrixFromQuaternion(link[5]), (3, 3))
        total = np.zeros(6)
        for cp in p.getContactPoints(bodyA=robot, physicsClientId=c):
            if cp[3] not in self._hand_links or cp[2] == robot:
                continue
            # Force on A (the hand): the normal along contactNormalOnB (from B towards A) and the two
            # friction components, all reported for A. PyBullet divides the last sub-step's impulse
            # by the whole step: times SUBSTEPS is the force.
            force = cp[9] * np.array(cp[7]) + cp[10] * np.array(cp[11]) + cp[12] * np.array(cp[13])
            force = SUBSTEPS * force
            total[:3] += force
            total[3:] += np.cross(np.array(cp[5]) - tcp_pos, force)
        return np.concatenate([tcp_rot.T @ total[:3], tcp_rot.T @ total[3:]])

    def set_object_properties(self, key: str, rgba, friction: float, mass_scale: float) -> None:
        c = self._client
        body = self._object_body(key)
        mass, moments = self._nominal[key]
        # PyBullet multiplies coefficients: sqrt keeps object-object pairs at `friction`; pairs with
        # the fingers and the table scale with it (an approximation of MuJoCo's max rule).
        p.changeDynamics(body, -1, lateralFriction=float(np.sqrt(friction)), physicsClientId=c)
        if mass > 0:
            p.changeDynamics(
                body,
                -1,
                mass=mass * mass_scale,
                localInertiaDiagonal=(moments * mass_scale).tolist(),
                physicsClientId=c,
            )
        p.changeVisualShape(body, -1, rgbaColor=list(rgba), physicsClientId=c)

    def touching(self, key_a: str, key_b: str) -> bool:
        for key in (key_a, key_b):
            if key not in self._bodies:
                raise UnknownNameError(f"unknown body {key!r}; known: {', '.join(self._bodies)}")
        (a, link_a), (b, link_b) = self._bodies[key_a], self._bodies[key_b]
        points = p.getContactPoints(a, b, link_a, link_b, physicsClientId=self._client)
        return any(cp[8] < TOUCH_DISTANCE for cp in points)

    # -- cameras ----------------------------------------------------------------------------
    def _look_at(self, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eye, target and up vector of `camera` in the world frame."""
        eye, target, up = (np.asarray(v, float) for v in (camera.position, camera.target, camera.up))
        if camera.on_hand:
            link = p.getLinkState(self._robot, self._tcp, computeForwardKinematics=True, physicsClientId=self._client)
            rot, origin = Rotation.from_quat(link[5]), np.array(link[4])
            eye, target, up = rot.apply(eye) + origin, rot.apply(target) + origin, rot.apply(up)
        return eye, target, up

    def render(self, camera: CameraSpec):
        if not camera.on_hand:
            return self._render(camera)
        # FMB's wrist camera sits inside the hand's mesh: MuJoCo culls its back faces, the
        # TinyRenderer does not, so the hand is hidden while a hand camera renders.
        c, hand = self._client, self._hand
        p.changeVisualShape(self._robot, hand, rgbaColor=[*self._hand_rgba[:3], 0.0], physicsClientId=c)
        try:
            return self._render(camera)
        finally:
            p.changeVisualShape(self._robot, hand, rgbaColor=self._hand_rgba, physicsClientId=c)

    def _render(self, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
        eye, target, up = self._look_at(camera)
        w, h = camera.width, camera.height
        view = p.computeViewMatrix(eye.tolist(), target.tolist(), up.tolist(), physicsClientId=self._client)
        proj = list(p.computeProjectionMatrixFOV(camera.fovy, w / h, NEAR, FAR, physicsClientId=self._client))
        # TinyRenderer samples pixel (row i, column j) at (j, i + 1), not at its centre (j + 1/2, i + 1/2):
        # shift the image by half a pixel so that rays go through pixel centres (sim.pointcloud).
        proj[8] += 1.0 / w
        proj[9] += 1.0 / h
        _, _, rgba, zbuf, _ = p.getCameraImage(
            w,
            h,
            view,
            proj,
            renderer=p.ER_TINY_RENDERER,
            shadow=0,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self._client,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()
        zbuf = np.asarray(zbuf, dtype=np.float64).reshape(h, w)
        depth = FAR * NEAR / (FAR - (FAR - NEAR) * zbuf)  # OpenGL depth buffer -> distance along the axis
        return rgb, depth.astype(np.float32)

    def camera_pose(self, camera: CameraSpec) -> np.ndarray:
        eye, target, up = self._look_at(camera)
        z = (target - eye) / np.linalg.norm(target - eye)
        x = np.cross(z, up)  # image right, as computeViewMatrix (gluLookAt) renders it
        if np.linalg.norm(x) < 1e-6:
            x = np.cross(z, [1.0, 0.0, 0.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)  # image down
        return pose(eye, Rotation.from_matrix(np.stack([x, y, z], axis=1)).as_quat())

    def save_state(self):
        """A snapshot in the client's memory (`saveState`), freed when it is garbage collected.

        It holds positions, velocities and contact points, not every solver warm start: runs from
        one snapshot are identical, and may drift ~1e-6 from the run it was taken in."""
        return _Snapshot(self._session)

    def restore_state(self, state) -> None:
        if not isinstance(state, _Snapshot) or state.session is not self._session:
            raise SimError("restore_state needs a snapshot taken by this backend since its last load()")
        p.restoreState(state.id, physicsClientId=self._client)

    def close(self) -> None:
        if self._session is not None and self._session.alive:
            self._session.alive = False
            p.disconnect(physicsClientId=self._session.client)
            p.disconnect(physicsClientId=self._session.fk_client)
        self._session = None
        self._signature = None


def _load_robot(client: int) -> int:
    """Load the rewritten Panda URDF into `client`; the arm's base is fixed at the origin."""
    with tempfile.TemporaryDirectory(prefix="fmb_panda_") as tmp:
        path = Path(tmp) / "panda.urdf"
        path.write_text(panda_urdf_text())
        flags = p.URDF_USE_INERTIA_FROM_FILE | p.URDF_MAINTAIN_LINK_ORDER
        return p.loadURDF(str(path), useFixedBase=True, flags=flags, physicsClientId=client)
