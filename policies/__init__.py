"""Diffusion action policies, preference-scored selection and GravMap guidance (issue: `policies/`).

Depends on `sim` and `cad`; never imports rclpy.
"""
