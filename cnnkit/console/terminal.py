"""What a run shows on the terminal and how it reacts to Ctrl-C."""

from __future__ import annotations

import logging
import signal
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any


def _drop_advertisements(record: logging.LogRecord) -> bool:
    return "Tip:" not in record.getMessage()


@contextmanager
def quiet_lightning(quiet: bool) -> Iterator[None]:
    """Keep Lightning's chatter (devices, checkpoint restore, stop), tips and advice warnings off the terminal.

    `quiet=False` (`--verbose`) shows Lightning's info messages; warnings that matter to the user show either way.
    """
    import lightning.pytorch  # noqa: F401  (installs the handlers filtered below)

    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    handlers = [handler for lg in loggers for handler in lg.handlers]
    for lg in loggers:
        lg.setLevel(logging.WARNING if quiet else logging.INFO)
    for handler in handlers:
        handler.addFilter(_drop_advertisements)
    with warnings.catch_warnings():
        for pattern in (
            ".*does not have many workers.*",
            ".*checkpoint directory.*exists and is not empty.*",
            ".*GPU available but not used.*",
            ".*LeafSpec.*",
            ".*smaller than the logging interval.*",  # --logger: cnnkit logs per epoch, never per step
        ):
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
            for handler in handlers:
                handler.removeFilter(_drop_advertisements)


@contextmanager
def _handling(numbers: tuple[int, ...], handler: Callable[[int, Any], None]) -> Iterator[None]:
    """`handler` for the given signals while the block runs, the previous handlers after it."""
    try:
        previous = {number: signal.signal(number, handler) for number in numbers}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def sigterm_as_interrupt() -> AbstractContextManager[None]:
    """`kill PID` (SIGTERM: a scheduler's time limit, a shutdown) ends the command as Ctrl-C does: jobs are told to
    stop at their next safe point and checkpoints are kept, instead of the process vanishing mid-write."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return _handling((signal.SIGTERM,), interrupt)


def stop_on_sigint(stopper: Any) -> AbstractContextManager[None]:
    """First Ctrl-C (or SIGTERM) asks the run to stop at the next batch; a second one stops at once."""

    def request(signum: int, frame: Any) -> None:
        if stopper.requested:
            raise KeyboardInterrupt
        stopper.requested = True
        from cnnkit.console.streams import progress_stream

        print("\nStopping at the next safe point (Ctrl-C again to abort at once)...", file=progress_stream())

    return _handling((signal.SIGINT, signal.SIGTERM), request)
