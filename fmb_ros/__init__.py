"""ROS 2 nodes wrapping the FMB skills (issue: `fmb_ros/`). The only package that imports rclpy.

Importing this package itself stays free of rclpy so that `colcon build` and the plain pip
install share one layout; nodes import rclpy in their own modules.
"""
