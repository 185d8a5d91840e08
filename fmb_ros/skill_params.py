"""Parameters of `fmb_skill_server` (name -> (default, description)), declared up front and read only.

`fmb_ros/README.md` has the same table for users; `tests/fmb_ros/test_launch.py` checks that every
parameter in the launch YAML files is one of these. The safety limits' defaults are
`sim.safety.SafetyLimits()`'s, i.e. `sim.limits` (the simulator's action limits and workspace).
"""

from __future__ import annotations

from sim.perceived_goals import PerceivedGoalConfig
from sim.safety import SafetyLimits

_LIMITS = SafetyLimits()
_GOALS = PerceivedGoalConfig()

PARAMETERS: dict[str, tuple[object, str]] = {
    "skill": ("grasp", "skill (a sim task name: grasp, place_on_fixture, regrasp, rotate, insert, ...)"),
    "checkpoint": ("", "policy run or checkpoint folder; empty = the scripted expert (simulation only)"),
    "device": ("auto", "torch device for policies: auto (CUDA when present, else CPU), cpu, cuda"),
    "seed": (0, "seed of the expert's noise / the policy's sampling"),
    "noise": (0.0, "scripted expert's noise scale (0 = deterministic)"),
    "candidates": (1, "action chunks a policy samples per decision (shown on markers_topic)"),
    "inference": ("async", "policies: async (next chunk computed in a background thread; late: hold) or sync"),
    "select": ("none", "policies: pick among candidates by a preference reward: none (the first), implicit, explicit"),
    "reward": ("", "select implicit/explicit: reward model folder (from fmb prefs train, same kind as select)"),
    "inference_lead": (3, "async: actions left in the chunk when the next inference starts (adaptive: the least)"),
    "inference_adaptive_lead": (True, "async: the lead follows the measured decision time so a chunk is ready in time"),
    "inference_nice": (-10, "async: inference thread nice value -20..19 (0 = leave; below 0 needs CAP_SYS_NICE)"),
    "inference_realtime": (0, "async: SCHED_FIFO priority 1-99 of the inference thread instead of nice (0 = off)"),
    "gil_switch_interval": (
        0.0002,
        "async: Python's thread switch interval [s] while a policy infers in its thread (0 = leave Python's 0.005)",
    ),
    "threads": (0, "CPU threads of the policy's computation (0 = the stack's inference budget: 1; fmb_core.threads)"),
    "action_horizon": (0, "policies: actions executed per chunk before re-planning (0 = the policy's)"),
    "guidance": (0.0, "policies: sub-goal cost guidance scale during sampling (0 = off; policies.gravmap)"),
    "temperature": (1.0, "policies: scale of the diffusion's initial noise (1 = as trained)"),
    "max_steps": (0, "step limit (0 = the task's: grasp 70, insert 100, ...)"),
    "approach": (
        False,
        "rotate, insert: a planned move first, as fmb eval runs a chain's learned stages (insert: the held peg to "
        "40 mm above its goal; rotate: the wrist the long way round where the short way lacks joint room)",
    ),
    "rate": (10.0, "command rate [Hz] (FMB: 10)"),
    "base_frame": ("panda_link0", "robot base frame: goals must be in it; commands are in it"),
    "joint_states_topic": ("joint_states", "sensor_msgs/JointState in: 7 arm joints [rad, rad/s]"),
    "tcp_pose_topic": ("tcp_pose", "geometry_msgs/PoseStamped in: measured TCP pose [m]"),
    "tcp_twist_topic": ("tcp_twist", "geometry_msgs/TwistStamped in: TCP velocity [m/s, rad/s]"),
    "wrench_topic": ("wrench", "geometry_msgs/WrenchStamped in: hand wrench [N, N m]"),
    "gripper_state_topic": ("gripper/joint_states", "sensor_msgs/JointState in: finger joints [m]"),
    "points_topic": ("points", "sensor_msgs/PointCloud2 in: fused cloud (used by point-cloud policies)"),
    "command_interface": (
        "cartesian",
        "cartesian (equilibrium pose), joint_trajectory (topic) or follow_joint_trajectory (control_msgs action)",
    ),
    "ik_solver": ("dls", "inverse kinematics for joint outputs and expert planning: dls (own) or mink"),
    "follow_joint_trajectory_action": (
        "/joint_trajectory_controller/follow_joint_trajectory",
        "control_msgs/action/FollowJointTrajectory out (follow_joint_trajectory interface; robot only)",
    ),
    "gripper_interface": ("topic", "topic (std_msgs/Float64 opening) or franka_action (franka_msgs Move/Grasp)"),
    "franka_gripper_namespace": ("/franka_gripper", "franka_action: namespace of the move and grasp actions"),
    "gripper_force": (70.0, "franka_action: grasp force [N]"),
    "policy_goal": (
        "auto",
        "goal-conditioned policies: auto (sim task target if known, else from the goal) or goal; the goal is the"
        " target as perceived (insert: the hole, grasp: the peg), the policy goal built as fmb eval --goals perceived",
    ),
    "held_peg_topic": (
        "",
        "geometry_msgs/PoseStamped in: the held peg in tcp_frame from perception (fmb_perception's ~/held_peg), for "
        "a tcp_goal's in-hand pose (in_hand); empty: none, the grasp command's",
    ),
    "in_hand": (
        _GOALS.in_hand,
        "a tcp_goal's in-hand pose, as fmb eval --in-hand: checked (the grasp command's unless the held peg is seen "
        "farther than in_hand_offset or in_hand_angle from it), commanded or estimated (held_peg_topic's)",
    ),
    "in_hand_offset": (_GOALS.in_hand_offset, "in_hand checked: tolerance of the peg's position in the hand [m]"),
    "in_hand_angle": (_GOALS.in_hand_angle, "in_hand checked: tolerance of the turn [deg] (modulo its symmetries)"),
    "held_peg_max_age": (
        10.0,
        "a held-peg estimate whose cloud is older than this at a goal's start is not used [s] (nor one from before "
        "the fingers last opened)",
    ),
    "tcp_frame": ("panda_hand_tcp", "TCP frame: the only frame a held-peg estimate is taken in"),
    "target_topic": ("", "geometry_msgs/PoseStamped in: a target from perception, run with ~/start (empty: none)"),
    "start_service": ("~/start", "std_srvs/Trigger: run towards the newest pose on target_topic"),
    "equilibrium_pose_topic": ("equilibrium_pose", "geometry_msgs/PoseStamped out: impedance target [m]"),
    "joint_trajectory_topic": ("joint_trajectory", "trajectory_msgs/JointTrajectory out (joint_trajectory interface)"),
    "gripper_command_topic": ("gripper/command", "std_msgs/Float64 out: finger opening [m] (0 = close)"),
    "goal_topic": ("~/goal", "geometry_msgs/PoseStamped in: the skill's target in base_frame"),
    "cancel_service": ("~/cancel", "std_srvs/Trigger: stop the running skill; the arm holds"),
    "emergency_stop_service": ("~/emergency_stop", "std_srvs/SetBool: true latches the stop, false releases"),
    "status_topic": ("~/status", "diagnostic_msgs/DiagnosticStatus out, every tick: state, step, score"),
    "result_topic": ("~/result", "diagnostic_msgs/DiagnosticStatus out, latched: the last run's outcome"),
    "markers_topic": (
        "~/markers",
        "visualization_msgs/MarkerArray out: goal, command, workspace, candidates, subgoal, gravmap",
    ),
    "ground_truth_namespace": ("ground_truth", "simulator's privileged topics (empty: none, real robot)"),
    "judge": (True, "end runs on the simulator's success check (<ground_truth_namespace>/evaluation)"),
    "workspace_low": (
        list(_LIMITS.workspace_low),
        "safety: lower TCP box corner in base_frame [m] (targets clipped in)",
    ),
    "workspace_high": (list(_LIMITS.workspace_high), "safety: upper TCP box corner in base_frame [m]"),
    "max_step_translation": (_LIMITS.max_step_translation, "safety: largest TCP move per command and axis [m]"),
    "max_step_rotation": (_LIMITS.max_step_rotation, "safety: largest TCP turn per command and axis [rad]"),
    "max_linear_speed": (_LIMITS.max_linear_speed, "safety: TCP speed limit per axis [m/s]"),
    "max_angular_speed": (_LIMITS.max_angular_speed, "safety: TCP turn rate limit per axis [rad/s]"),
    "observation_timeout": (
        _LIMITS.observation_timeout,
        "safety: hold when the newest TCP pose is older than this [s]",
    ),
}
COMMAND_INTERFACES = ("cartesian", "joint_trajectory", "follow_joint_trajectory")
GRIPPER_INTERFACES = ("topic", "franka_action")
JOINT_INTERFACES = ("joint_trajectory", "follow_joint_trajectory")
LIMIT_NAMES = (
    "workspace_low",
    "workspace_high",
    "max_step_translation",
    "max_step_rotation",
    "max_linear_speed",
    "max_angular_speed",
    "observation_timeout",
)
