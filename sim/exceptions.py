"""Errors raised by `sim`. All derive from :class:`fmb_core.FmbError`."""

from fmb_core.errors import FmbError, ParameterError


class SimError(FmbError):
    """Base class for simulation errors."""


class UnknownNameError(ParameterError, SimError):
    """An unknown task, backend, object or camera name; the message lists the known ones."""


class AssetError(SimError):
    """An object's simulator assets are missing or unreadable."""


class ActionError(ParameterError, SimError):
    """An action of the wrong shape, or with NaN/inf."""


class PerceptionError(SimError):
    """Perception cannot run (open3d missing, an unknown part) or found nothing."""


class DataFormatError(SimError):
    """A data file to import (an FMB release file, a rosbag, a LeRobot dataset) lacks a required key
    or topic, or holds one of the wrong shape; the message names the file and the key."""


class EpisodeAborted(SimError):
    """A controller cannot go on with the episode (perception did not find the skill's target);
    `sim.rollout.run_episode` ends the episode as a failure with this reason, it does not raise."""


__all__ = [
    "ActionError",
    "AssetError",
    "DataFormatError",
    "EpisodeAborted",
    "ParameterError",
    "PerceptionError",
    "SimError",
    "UnknownNameError",
]
