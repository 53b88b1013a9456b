"""Errors a user can act on. The CLI prints their message on one line and exits with `exit_code`."""

from __future__ import annotations


class CnnkitError(Exception):
    """A problem with the user's input or environment, not a bug in cnnkit."""

    exit_code = 2


class UsageError(CnnkitError):
    """A bad command-line value, an unknown name, a malformed study file."""


class DataError(CnnkitError):
    """A data file that is missing, truncated, corrupt or of the wrong shape."""


class PluginError(CnnkitError):
    """A plugin that registers a duplicate name or raises inside a hook."""


class RunError(CnnkitError):
    """A run that cannot proceed (unwritable output, conflicting run directory, missing device)."""
