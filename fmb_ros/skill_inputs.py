"""What a skill server reads: the observation topics into a `WorldMirror`, the simulator's
privileged `<ground_truth_namespace>/*` topics (episode facts, object poses, the success judge), and
perception's estimate of the held peg in the hand (`held_peg_topic`, into `held`,
`fmb_ros.held_peg.HeldPegEstimates`).

    inputs = SkillInputs(node, params, world, arm_joints)   # subscribes on `node`
    evaluation = inputs.judgement(run.started_at)           # the judge's verdict for this run, or None

In a chain task (several skills in one scene) the skill sees only its own stage's episode facts and
a judgement rescaled to its stage (`fmb_ros.skill.stage_judgement`).
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseArray, PoseStamped, TwistStamped, WrenchStamped
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import String

from fmb_core.errors import FmbError
from fmb_ros import convert, qos
from fmb_ros.held_peg import HeldPegEstimates
from fmb_ros.skill import stage_judgement
from fmb_ros.world import WorldMirror


class SkillInputs:
    """See module docstring.

    Args:
        node: the node to subscribe on (and log with).
        params: the skill server's parameters (topic names, `skill`, `ground_truth_namespace`, `judge`,
            `held_peg_topic`, `tcp_frame`, `held_peg_max_age`).
        world: the mirror the observations are written into.
        arm_joints: names of the 7 arm joints, in order.
    """

    def __init__(self, node, params: dict, world: WorldMirror, arm_joints):
        self.node, self.world, self.arm_joints = node, world, arm_joints
        self.skill = params["skill"]
        self.evaluation: dict | None = None
        self.object_keys: list[str] = []
        self.stage: tuple[int, int] | None = None  # (this skill's stage, stages) in a chain task
        self.held = HeldPegEstimates(params["held_peg_max_age"])
        self.tcp_frame = params["tcp_frame"]
        sub, p = node.create_subscription, params
        sub(PoseStamped, p["tcp_pose_topic"], self.on_tcp_pose, qos.STATE)
        sub(JointState, p["joint_states_topic"], self.on_joint_states, qos.STATE)
        sub(TwistStamped, p["tcp_twist_topic"], self.on_twist, qos.STATE)
        sub(WrenchStamped, p["wrench_topic"], self.on_wrench, qos.STATE)
        sub(JointState, p["gripper_state_topic"], self.on_gripper_state, qos.STATE)
        if p["points_topic"]:
            sub(PointCloud2, p["points_topic"], self.on_points, qos.SENSOR)
        if p["held_peg_topic"]:
            sub(PoseStamped, p["held_peg_topic"], self.on_held_peg, qos.STATE)
        gt = p["ground_truth_namespace"].rstrip("/")
        if gt:
            sub(String, f"{gt}/episode", self.on_episode, qos.LATCHED)
            sub(PoseArray, f"{gt}/object_poses", self.on_object_poses, qos.STATE)
            if p["judge"]:
                sub(DiagnosticStatus, f"{gt}/evaluation", self.on_evaluation, qos.STATE)

    def judgement(self, started_at: float | None) -> dict | None:
        """The judge's newest verdict made after `started_at` [s] (this run's), seen by this stage."""
        evaluation = self.evaluation
        if evaluation is not None and started_at is not None and not evaluation["time"] >= started_at:
            evaluation = None  # a judgement from before this goal
        if self.stage is not None:
            evaluation = stage_judgement(evaluation, *self.stage)
        return evaluation

    # -- observations ----------------------------------------------------------------------------
    def on_tcp_pose(self, msg: PoseStamped) -> None:
        pose, _, stamp = convert.pose_stamped_array(msg)
        self.world.set_tcp(pose, stamp)

    def on_joint_states(self, msg: JointState) -> None:
        try:
            self.world.q, self.world.dq = convert.joint_state_arrays(msg, self.arm_joints)
        except FmbError as e:
            self.node.get_logger().warning(str(e), throttle_duration_sec=5.0)

    def on_twist(self, msg: TwistStamped) -> None:
        self.world.twist = convert.twist_array(msg)

    def on_wrench(self, msg: WrenchStamped) -> None:
        self.world.wrench = convert.wrench_array(msg)

    def on_gripper_state(self, msg: JointState) -> None:
        self.world.gripper = float(sum(msg.position))
        self.held.on_fingers(self.world.gripper, convert.from_stamp(msg.header.stamp))

    def on_held_peg(self, msg: PoseStamped) -> None:
        """Perception's held peg, T_tcp_peg; in another frame than `tcp_frame` it is ignored."""
        pose, frame, stamp = convert.pose_stamped_array(msg)
        if frame != self.tcp_frame:
            self.node.get_logger().warning(
                f"ignored a held-peg pose in frame {frame!r}; expected {self.tcp_frame!r}", throttle_duration_sec=5.0
            )
            return
        self.held.on_estimate(pose, stamp)

    def on_points(self, msg: PointCloud2) -> None:
        self.world.arrays["points"] = convert.point_cloud_array(msg)

    # -- the simulator's ground truth ------------------------------------------------------------
    def on_episode(self, msg: String) -> None:
        """Episode facts; in a chain task (several skills in one scene) this skill's stage only."""
        info = convert.from_json(msg.data)
        self.object_keys = list(info.get("object_keys", []))
        names = info.get("stage_names") or []
        self.stage = None
        if self.skill in names and "stages" in info:
            self.stage = (names.index(self.skill), len(names))
            info = dict(info["stages"][self.stage[0]])
        self.world.set_episode(info)

    def on_object_poses(self, msg: PoseArray) -> None:
        poses = convert.pose_array_arrays(msg)
        if len(poses) == len(self.object_keys):
            self.world.set_objects(self.object_keys, poses)

    def on_evaluation(self, msg: DiagnosticStatus) -> None:
        v = convert.status_values(msg)
        self.evaluation = {
            "success": v.get("success") == "true",
            "failed": v.get("failed") == "true",
            "progress": float(v.get("progress", "nan")),
            "time": float(v.get("time", "nan")),
            "stage": int(v["stage"]) if v.get("stage", "").isdigit() else None,
        }
