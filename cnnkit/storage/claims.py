"""Claiming a run: its lock is taken just before anything is written, then what a killed process left is tidied."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from cnnkit.errors import RunError
from cnnkit.results.reading import finished_result
from cnnkit.storage.damage import repair
from cnnkit.storage.locks import RunLocked, hold_run_lock, lock_holder


class FinishedMeanwhile(Exception):
    """Another process finished the run between our first look and taking its lock."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("finished by another process")
        self.result = result


def refuse_if_locked(run_dir: Path) -> None:
    """RunLocked at once when a live process holds the run (cheap: nothing is loaded or written)."""
    holder = lock_holder(run_dir)
    if holder is not None:
        raise RunLocked(run_dir, holder)


class RunClaim:
    """Holds a run's lock from `take()` to the end of the `with` block; `lock=False` in DDP helper ranks.

    `finished` reads the run's result when it is complete (a search trial's record differs from a run's)."""

    def __init__(
        self,
        run_dir: Path,
        fresh: bool,
        lock: bool = True,
        finished: Callable[..., dict[str, Any] | None] = finished_result,
    ) -> None:
        self.run_dir, self.fresh, self.lock, self.finished = run_dir, fresh, lock, finished
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.close()

    def take(self) -> None:
        """Lock the run (RunLocked if taken), then repair it; FinishedMeanwhile if another process finished it."""
        if not self.lock:
            return
        try:
            self._stack.enter_context(hold_run_lock(self.run_dir))
        except OSError as exc:  # e.g. --out below a file
            raise RunError(f"cannot write to {self.run_dir}: {exc.strerror or exc}; choose another --out") from exc
        if self.fresh:
            return
        result = self.finished(self.run_dir, quiet=True)  # the caller said so if it is damaged
        if result is not None:
            raise FinishedMeanwhile(result)
        repair(self.run_dir)

    def before(self, then: Callable[[], None] | None) -> Callable[[], None]:
        """A `before_write` hook that calls `then` (e.g. writing study.json) once the claim is taken."""

        def hook() -> None:
            self.take()
            if then is not None:
                then()

        return hook
