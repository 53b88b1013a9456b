"""A full disk, however it surfaces (OSError ENOSPC, or torch's "unexpected pos" RuntimeError), said as such."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from cnnkit.errors import CnnkitError

NEARLY_FULL_BYTES = 1 << 20  # below this, a failed write is put down to a full disk


class DiskFull(CnnkitError):
    """A write failed because the filesystem holding it has no space left."""

    exit_code = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"the disk is full: cannot write {path} ({free_text(path.parent)} free there); "
            "free some space or choose another --out, then run the same command again to resume"
        )


def free_bytes(directory: Path) -> int | None:
    """Free bytes on the filesystem of `directory` (its nearest existing parent), or None when unknown."""
    for candidate in (directory, *directory.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def free_text(directory: Path) -> str:
    free = free_bytes(directory)
    if free is None:
        return "unknown space"
    return f"{free / 2**20:.1f} MiB" if free >= 2**20 else f"{free} bytes"


def is_disk_full(exc: BaseException, directory: Path | None = None) -> bool:
    """True when `exc` (or an exception it came from) is ENOSPC/EDQUOT, or a write error on a nearly full disk."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = current.__cause__ or current.__context__
    if directory is None or not isinstance(exc, (OSError, RuntimeError)):
        return False
    free = free_bytes(directory)
    return free is not None and free < NEARLY_FULL_BYTES


def disk_full_message(exc: BaseException) -> str | None:
    """One line for an ENOSPC that reached the command line from anywhere, or None for other errors."""
    if not is_disk_full(exc):
        return None
    name = getattr(exc, "filename", None)
    where = Path(os.fsdecode(name)) if name else None
    if where is None:
        return "the disk is full (no space left on device); free some space, then run the same command again"
    return str(DiskFull(where))
