"""Errors a user can act on. The CLI prints their message on one line and exits with `exit_code`."""

from __future__ import annotations


class CnnkitError(Exception):
    """A problem with the user's input or environment, not a bug in cnnkit."""

    exit_code = 2

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code  # e.g. 1 for an environment's failure (an unwritable folder)


class UsageError(CnnkitError):
    """A bad command-line value, an unknown name, a malformed study file."""


class DataError(CnnkitError):
    """A data file that is missing, truncated, corrupt or of the wrong shape."""


class PluginError(CnnkitError):
    """A plugin that registers a duplicate name or raises inside a hook."""


class RunError(CnnkitError):
    """A run that cannot proceed (unwritable output, conflicting run directory, missing device)."""
