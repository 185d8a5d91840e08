"""MuJoCo backend: the world from `sim.mujoco_scene`, the Panda torque-controlled at the physics rate.

Fixed parts are mocap bodies, so a new episode moves them without recompiling; a new set of parts
recompiles. Each step runs mj_step2 then mj_step1, so what the controller reads always describes
the current state. The wrench is the sum of contact forces on the hand and fingers (what Franka's
external-wrench estimate reports), expressed in the TCP frame. Instability (MuJoCo resetting a
blown-up state) raises SimError. MuJoCo's quaternions are wxyz: converted here and in the scene only.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
import mujoco  # noqa: E402

from sim import panda  # noqa: E402
from sim.backend import Backend, RobotState  # noqa: E402
from sim.exceptions import SimError, UnknownNameError  # noqa: E402
from sim.mujoco_scene import scene_spec  # noqa: E402
from sim.scene import CameraSpec, SceneSpec  # noqa: E402
from sim.spatial import wxyz_to_xyzw, xyzw_to_wxyz  # noqa: E402

HAND_BODIES = ("panda_hand", "panda_leftfinger", "panda_rightfinger")


class MujocoBackend(Backend):
    """See module docstring."""

    name = "mujoco"

    def __init__(self):
        self.model = None
        self.data = None
        self._signature = None
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    # -- building ---------------------------------------------------------------------------
    def load(self, scene: SceneSpec) -> None:
        if self._signature == scene.signature():
            return
        self.close()
        if hasattr(self, "_fk_data"):
            del self._fk_data
        spec = scene_spec(scene)
        self.spec = spec
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.scene = scene
        self._signature = scene.signature()
        self._index()

    def _index(self) -> None:
        m = self.model
        self._arm_qpos = np.array([m.joint(j).qposadr[0] for j in panda.ARM_JOINTS])
        self._arm_dof = np.array([m.joint(j).dofadr[0] for j in panda.ARM_JOINTS])
        self._finger_qpos = np.array([m.joint(j).qposadr[0] for j in panda.FINGER_JOINTS])
        self._finger_dof = np.array([m.joint(j).dofadr[0] for j in panda.FINGER_JOINTS])
        self._arm_act = np.array([m.actuator(f"{j}_motor").id for j in panda.ARM_JOINTS])
        self._finger_act = np.array([m.actuator(f"{j}_pos").id for j in panda.FINGER_JOINTS])
        self._finger_act_ids = [int(a) for a in self._finger_act]
        self._finger_step = panda.FINGER_SPEED * m.opt.timestep
        self._steps = 0
        self._tcp = m.site("tcp").id
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._bodies: dict[str, int] = {}
        self._free_qpos: dict[str, int] = {}
        for obj in self.scene.objects:
            b = m.body(f"{obj.key}/{obj.part.name}")
            self._bodies[obj.key] = b.id
            if obj.fixed:
                self._bodies[obj.key] = b.id
            else:
                self._free_qpos[obj.key] = m.joint(f"{obj.key}/{obj.part.name}_free").qposadr[0]
        self._object_geoms = {
            obj.key: [g for g in range(m.ngeom) if m.geom_bodyid[g] == self._bodies[obj.key]]
            for obj in self.scene.objects
        }
        self._nominal = {
            obj.key: (float(m.body_mass[self._bodies[obj.key]]), m.body_inertia[self._bodies[obj.key]].copy())
            for obj in self.scene.objects
        }
        self._bodies["left_finger"] = m.body("panda_leftfinger").id
        self._bodies["right_finger"] = m.body("panda_rightfinger").id
        self._hand_bodies = {m.body(b).id for b in HAND_BODIES}
        self._robot_bodies = {i for i in range(m.nbody) if m.body(i).name.startswith("panda_")}
        self._cameras = {c.name: m.camera(c.name).id for c in self.scene.cameras}

    # -- state ------------------------------------------------------------------------------
    def reset(self, q, gripper_width, object_poses) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        for w in d.warning:  # a previous episode's instability must not fail this one
            w.number = 0
        d.qpos[self._arm_qpos] = q
        d.qpos[self._finger_qpos] = gripper_width / 2
        d.ctrl[self._finger_act] = gripper_width / 2
        for key, p in object_poses.items():
            self._set_object_pose(key, np.asarray(p, float))
        mujoco.mj_forward(m, d)

    def _set_object_pose(self, key: str, p: np.ndarray) -> None:
        if key not in self._bodies:
            raise UnknownNameError(f"unknown object {key!r}; known: {', '.join(self._free_qpos) or 'none'}")
        if key in self._free_qpos:
            adr = self._free_qpos[key]
            self.data.qpos[adr : adr + 3] = p[:3]
            self.data.qpos[adr + 3 : adr + 7] = xyzw_to_wxyz(p[3:])
        else:
            mocap = self.model.body_mocapid[self._bodies[key]]
            self.data.mocap_pos[mocap] = p[:3]
            self.data.mocap_quat[mocap] = xyzw_to_wxyz(p[3:])

    def robot_state(self) -> RobotState:
        m, d = self.model, self.data
        mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self._tcp)
        jac = np.vstack([self._jacp[:, self._arm_dof], self._jacr[:, self._arm_dof]])
        dq = d.qvel[self._arm_dof].copy()
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        tcp_pose = np.concatenate([d.site_xpos[self._tcp], wxyz_to_xyzw(quat)])
        return RobotState(
            q=d.qpos[self._arm_qpos].copy(),
            dq=dq,
            tcp_pose=tcp_pose,
            tcp_twist=jac @ dq,
            jacobian=jac,
            bias=d.qfrc_bias[self._arm_dof].copy(),
            gripper_width=float(d.qpos[self._finger_qpos].sum()),
        )

    def forward_kinematics(self, q):
        m = self.model
        if not hasattr(self, "_fk_data"):
            self._fk_data = mujoco.MjData(m)
        d = self._fk_data
        d.qpos[self._arm_qpos] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jacSite(m, d, jacp, jacr, self._tcp)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        tcp_pose = np.concatenate([d.site_xpos[self._tcp], wxyz_to_xyzw(quat)])
        return tcp_pose, np.vstack([jacp[:, self._arm_dof], jacr[:, self._arm_dof]])

    def step(self, torques, gripper_width) -> None:
        # mj_step2 then mj_step1: after every step the kinematics, Jacobians and bias forces in
        # `data` describe the *current* state, so the controller never acts on a stale one and a
        # restored snapshot continues exactly as the original run did.
        d = self.data
        d.ctrl[self._arm_act] = torques
        # The finger targets move at the hand's rated speed: a position servo jumping straight to
        # "closed" would fling the fingers through a thin part within one control period.
        step = self._finger_step
        for a in self._finger_act_ids:
            d.ctrl[a] += min(step, max(-step, gripper_width / 2 - d.ctrl[a]))
        mujoco.mj_step2(self.model, d)
        mujoco.mj_step1(self.model, d)
        self._steps += 1
        if self._steps % 25 == 0:  # MuJoCo resets an unstable state itself; its warning counters stay
            bad = (
                d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number + d.warning[mujoco.mjtWarning.mjWARN_BADQVEL].number
            )
            if bad:
                raise SimError("the simulation became unstable (NaN or huge accelerations; MuJoCo reset its state)")

    def object_pose(self, key: str) -> np.ndarray:
        if key not in self._bodies:
            raise UnknownNameError(f"unknown object {key!r}; known: {', '.join(self._bodies)}")
        b = self._bodies[key]
        return np.concatenate([self.data.xpos[b], wxyz_to_xyzw(self.data.xquat[b])])

    def wrench(self) -> np.ndarray:
        m, d = self.model, self.data
        # After mj_step1 the contact list is new but efc_force still holds the last step's
        # solution (indices no longer match: kN spikes). Solve the constraints for the current
        # state first (acceleration stage only, no integration).
        mujoco.mj_forwardSkip(m, d, mujoco.mjtStage.mjSTAGE_VEL, 1)
        tcp_pos = d.site_xpos[self._tcp]
        tcp_rot = d.site_xmat[self._tcp].reshape(3, 3)
        total = np.zeros(6)
        f6 = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
            on_hand = (b1 in self._hand_bodies, b2 in self._hand_bodies)
            if on_hand[0] == on_hand[1]:
                continue
            mujoco.mj_contactForce(m, d, i, f6)
            force = c.frame.reshape(3, 3).T @ f6[:3]  # on geom2 from geom1, world frame
            if on_hand[0]:
                force = -force  # force on the hand
            total[:3] += force
            total[3:] += np.cross(c.pos - tcp_pos, force)
        return np.concatenate([tcp_rot.T @ total[:3], tcp_rot.T @ total[3:]])

    def set_object_properties(self, key: str, rgba, friction: float, mass_scale: float) -> None:
        m = self.model
        if key not in self._free_qpos and key not in self._object_geoms:
            raise UnknownNameError(f"unknown object {key!r}; known: {', '.join(self._object_geoms)}")
        body = self._bodies[key]
        nominal_mass, nominal_inertia = self._nominal[key]
        m.body_mass[body] = nominal_mass * mass_scale
        m.body_inertia[body] = nominal_inertia * mass_scale
        for g in self._object_geoms[key]:
            if m.geom_contype[g] or m.geom_conaffinity[g]:
                m.geom_friction[g, 0] = friction
            else:
                m.geom_rgba[g] = rgba

    def touching(self, key_a: str, key_b: str) -> bool:
        m, d = self.model, self.data
        a, b = self._bodies[key_a], self._bodies[key_b]
        for i in range(d.ncon):
            c = d.contact[i]
            pair = {m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]}
            if pair == {a, b}:
                return True
        return False

    # -- cameras ----------------------------------------------------------------------------
    def render(self, camera: CameraSpec):
        key = (camera.height, camera.width)
        if key not in self._renderers:
            self._renderers[key] = mujoco.Renderer(self.model, camera.height, camera.width)
        r = self._renderers[key]
        r.update_scene(self.data, camera=self._cameras[camera.name])
        rgb = r.render().copy()
        r.enable_depth_rendering()
        r.update_scene(self.data, camera=self._cameras[camera.name])
        depth = r.render().astype(np.float32)
        r.disable_depth_rendering()
        return rgb, depth

    def camera_pose(self, camera: CameraSpec) -> np.ndarray:
        d = self.data
        cid = self._cameras[camera.name]
        mat = d.cam_xmat[cid].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])  # MuJoCo (-z forward) -> OpenCV
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, mat.ravel())
        return np.concatenate([d.cam_xpos[cid], wxyz_to_xyzw(quat)])

    def save_state(self):
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        return state

    def restore_state(self, state) -> None:
        mujoco.mj_setState(self.model, self.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
