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


class EpisodeAborted(SimError):
    """A controller cannot go on with the episode (perception did not find the skill's target);
    `sim.rollout.run_episode` ends the episode as a failure with this reason, it does not raise."""


__all__ = [
    "ActionError",
    "AssetError",
    "EpisodeAborted",
    "ParameterError",
    "PerceptionError",
    "SimError",
    "UnknownNameError",
]
