"""Runtime failures that are not bugs, though they reach the command line as plain exceptions: one line each."""

from __future__ import annotations

from cnnkit.storage.diskspace import disk_full_message
from cnnkit.storage.locks import RunLocked


def known_failure(exc: BaseException) -> str | None:
    """The one line to show for `exc` (exit 1), or None when it is an internal error."""
    if isinstance(exc, RunLocked):
        return f"{exc}; wait for it to finish (cnnkit status shows it) or train another run"
    return disk_full_message(exc)
