"""ROS 2 nodes wrapping the FMB skills (issue: `fmb_ros/`). The only package that imports rclpy.

Importing this package itself stays free of rclpy so that `colcon build` and the plain pip
install share one layout; nodes import rclpy in their own modules. See fmb_ros/README.md.

Logic without a ROS graph: `skill` (goal -> run -> result), `world` (an FmbEnv-shaped view of the
topics), `controllers` (expert or policy), `async_runner` (a policy's next chunk computed in a
background thread), `kinematics` (own DLS or mink), `trajectory`, `task_plan`, `held_peg` (the held
peg's estimate between perception and a skill's `tcp_goal`, and the executor's wait for it). The ROS-free cores
the nodes wrap live below this package, where `fmb eval` can use them too: the safety filter in
every command path is `sim.safety` (limits from `sim.limits`), pose estimation by CAD-model
registration is `sim.perception`. Messages: `convert` (the only place
that maps messages to arrays), `qos`, `params`; `adapters` (robot-only interfaces, imported lazily).
Nodes: `sim_robot`, `skill_server` (with `skill_params`, `skill_inputs`), `task_executor`,
`perception_node`; `spin` owns the process; `watch` reports missing inputs; `cli` is `fmb ros`;
`bench` is `fmb bench ros`.
"""
