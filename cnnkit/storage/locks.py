"""OS-level run locks: the process that trains a run holds one on its directory; it dies with the process.

The lock is an `fcntl.flock` on `RUN_DIR/.lock`. The file also holds who took it (host, pid, start time) as
JSON, so `cnnkit status` and other processes can say who trains a run; a file left by a dead process is
harmless, because only the flock counts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_NAME = ".lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a run's lock."""

    host: str
    pid: int
    started: float

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}"


class RunLocked(Exception):
    """The run is being trained by another process (`holder` says which)."""

    def __init__(self, run_dir: Path, holder: LockHolder | None) -> None:
        self.run_dir, self.holder = run_dir, holder
        who = holder.describe() if holder else "another process"
        super().__init__(f"{run_dir.name} is being trained by {who}")


def command_pid() -> int:
    """The pid of the cnnkit command that was started (its job processes inherit it)."""
    return int(os.environ.get("CNNKIT_COMMAND_PID", os.getpid()))


def _read_holder(path: Path) -> LockHolder | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(str(data["host"]), int(data["pid"]), float(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def hold_run_lock(run_dir: Path) -> Iterator[LockHolder]:
    """Hold the lock of `run_dir` (created if needed) for the duration; RunLocked if another process has it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(run_dir, _read_holder(path)) from None
        holder = LockHolder(socket.gethostname(), command_pid(), time.time())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder.__dict__).encode(), 0)
        yield holder
    finally:
        os.close(fd)  # releases the flock


def lock_holder(run_dir: Path) -> LockHolder | None:
    """The live holder of `run_dir`'s lock, or None when no process holds it (a dead holder does not count)."""
    path = run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path) or LockHolder("unknown", 0, 0.0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def last_holder(run_dir: Path) -> LockHolder | None:
    """Who last took the lock, alive or not (for 'interrupted: pid P on host H died')."""
    return _read_holder(run_dir / LOCK_NAME)
