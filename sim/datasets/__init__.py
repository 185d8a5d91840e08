"""Importers of recorded robot data into the episode store (`sim.store`): FMB's released `.npy`
trajectories (`fmb_release`) and rosbag2 bags (`rosbag`, with the topic mapping of `sim.recording`).
Torch-free and ROS-free; `fmb data ...` (`sim.datasets.cli`) is their command line."""

__all__ = ["cli", "fmb_release", "rosbag"]
