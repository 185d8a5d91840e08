"""Errors of the preference package (all are FmbErrors, printed as one line by `fmb`)."""

from fmb_core.errors import FmbError


class PreferenceDataError(FmbError):
    """A preference folder is missing, malformed, or its labels are missing or contradictory."""


class RewardModelError(FmbError):
    """A reward checkpoint is missing, corrupt, or was trained for another task, observation
    layout or reference policy."""
