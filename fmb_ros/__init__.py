"""ROS 2 nodes wrapping the FMB skills (issue: `fmb_ros/`). The only package that imports rclpy.

Importing this package itself stays free of rclpy so that `colcon build` and the plain pip
install share one layout; nodes import rclpy in their own modules. See fmb_ros/README.md.

Pure core (no ROS graph): `safety` (the filter in every command path), `skill` (goal -> run ->
result), `world` (an FmbEnv-shaped view of the topics), `controllers` (expert or policy),
`kinematics` (own DLS or mink), `trajectory`, `task_plan`, `perception` (CAD model registration,
open3d; models and pose maths in `perception_models`) and `perception_eval` (its error against
the simulator). Messages: `convert` (the only place
that maps messages to arrays), `qos`, `params`; `adapters` (robot-only interfaces, imported lazily).
Nodes: `sim_robot`, `skill_server`, `task_executor`, `perception_node`; `spin` owns the process;
`watch` reports missing inputs; `cli` is `fmb ros`; `bench` is `fmb bench ros`.
"""
