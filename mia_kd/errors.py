"""The one error hierarchy of mia_kd.

User errors (a bad config, a missing file, an unknown name) derive from :class:`UserError`; the CLI turns
them into one line on stderr and exit code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MiaKdError(Exception):
    """Root of every error mia_kd raises on purpose."""


class UserError(MiaKdError):
    """Something the user can fix: the message names the key, the bad value and what is allowed."""


class ConfigError(UserError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class DataError(UserError):
    """A data source cannot be read, or its records cannot make a valid split."""


class ShiftedSplitError(DataError):
    """The blind check tells members from non-members without any model: membership is not IID."""
