"""The one funnel for failures: every way out of cnnkit (the command, the Python API, a job worker) turns an
exception into a `Failure` here, so one failure gives one message and one exit code wherever it surfaces.

- a `CnnkitError` (a problem the user can act on): its own message and exit code;
- a known runtime failure that is not a bug, though it arrives as a plain exception (a run another process
  trains, a full disk): one line, exit 1;
- Ctrl-C (or SIGTERM, `cnnkit.console.terminal`): interrupted, exit 130;
- a closed pipe (`cnnkit list | head -2`): nothing more to say, exit 141 as a Unix tool killed by SIGPIPE;
- anything else: an internal error (a bug), its type and message, exit 1.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from enum import Enum

from cnnkit.errors import CnnkitError, RunError
from cnnkit.storage.diskspace import disk_full_message
from cnnkit.storage.locks import RunLocked

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 128 + 13  # SIGPIPE
INTERRUPTED = "interrupted; its checkpoints are kept"
LOCKED_ADVICE = "wait for it to finish (cnnkit status shows it) or train another run"


class FailureKind(Enum):
    """What kind of failure an exception is, which decides how each way out of cnnkit shows it."""

    USER = "user"  # a CnnkitError
    LOCKED = "locked"  # a run another process is training
    RUNTIME = "runtime"  # another known runtime failure (a full disk)
    INTERRUPTED = "interrupted"
    CLOSED_PIPE = "closed pipe"  # the reader of our output went away (`| head`)
    INTERNAL = "internal"  # a bug


@dataclass(frozen=True)
class Failure:
    """What went wrong, in cnnkit's words: `message` says what happened, `advice` (if any) what to do."""

    kind: FailureKind
    message: str
    exit_code: int
    advice: str = ""

    @property
    def line(self) -> str:
        """The one line a user is shown (after `cnnkit: error: ` on the command line)."""
        return f"{self.message}; {self.advice}" if self.advice else self.message

    @property
    def known(self) -> bool:
        """A runtime failure that is not a bug, though it did not arrive as a CnnkitError."""
        return self.kind in (FailureKind.LOCKED, FailureKind.RUNTIME)


def failure_of(exc: BaseException) -> Failure:
    """The funnel: `exc`, whatever it is, as a `Failure`, in the words of whoever is told (`caller`)."""
    failure = _failure_of(exc)
    words = caller()
    if words is Caller.COMMAND:
        return failure
    return replace(failure, message=worded(failure.message, words), advice=worded(failure.advice, words))


def _failure_of(exc: BaseException) -> Failure:
    if isinstance(exc, CnnkitError):
        return Failure(FailureKind.USER, str(exc), exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return Failure(FailureKind.INTERRUPTED, INTERRUPTED, EXIT_INTERRUPTED)
    if isinstance(exc, BrokenPipeError):
        return Failure(FailureKind.CLOSED_PIPE, "the output's reader has gone", EXIT_CLOSED_PIPE)
    if isinstance(exc, RunLocked):
        return Failure(FailureKind.LOCKED, str(exc), EXIT_FAILED, LOCKED_ADVICE)
    full = disk_full_message(exc)
    if full is not None:
        return Failure(FailureKind.RUNTIME, full, EXIT_FAILED)
    return Failure(FailureKind.INTERNAL, f"internal error: {type(exc).__name__}: {exc}", EXIT_FAILED)


# ------------------------------------------------------------------------------------------ the command line
def command_line_exit(exc: BaseException, command_line: str, debug: bool = False) -> int:
    """`cnnkit`'s ending for `exc`: its one line on stderr (the traceback first with --debug); the exit code."""
    failure = failure_of(exc)
    if failure.kind is FailureKind.CLOSED_PIPE:
        _silence_stdout()
        return failure.exit_code
    if debug and failure.kind is not FailureKind.INTERRUPTED:
        traceback.print_exception(exc)
    print(command_line_text(failure, command_line), file=sys.stderr)
    return failure.exit_code


def _silence_stdout() -> None:
    """After a closed pipe: what is still buffered for stdout goes nowhere, instead of failing again at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def command_line_text(failure: Failure, command_line: str) -> str:
    """What `cnnkit` prints for `failure`; an interrupted command says how to resume it."""
    if failure.kind is FailureKind.INTERRUPTED:
        return f"\ncnnkit: interrupted; checkpoints are kept. Resume with: {command_line}"
    if failure.kind is FailureKind.INTERNAL:
        return f"cnnkit: {failure.line} (run with --debug for the traceback)"
    return f"cnnkit: error: {failure.line}"


# ------------------------------------------------------------------------------------------ the Python API
class Caller(Enum):
    """Who is told of a failure, which decides the words for what to do: the command's options or the API's
    keyword arguments."""

    COMMAND = "command"
    API = "api"


_CALLER: ContextVar[Caller] = ContextVar("cnnkit_caller", default=Caller.COMMAND)


def caller() -> Caller:
    """Who is being told now: the API inside `as_cnnkit_errors`, else the command line."""
    return _CALLER.get()


# The command's options as a caller of `cnnkit.run`, `cnnkit.run_study` or `StudyResult.report` writes them.
API_WORDS = {"--fresh": "fresh=True", "--out": "out=", "--format": "formats=", "--report-format": "formats="}
OPTION = re.compile(r"(?<![\w-])--([a-z][a-z-]*)(?![\w-])")


def worded(message: str, caller: Caller) -> str:
    """`message` in `caller`'s words: for the API `pass --fresh` reads `pass fresh=True`, `--out` reads `out=`, and a
    setting's or option's flag (`--epochs`, `--data-dir`) its keyword (`epochs`, `data_dir`); other flags stay."""
    if caller is Caller.COMMAND:
        return message

    def keyword(match: re.Match[str]) -> str:
        flag, name = match.group(0), match.group(1).replace("-", "_")
        return API_WORDS.get(flag) or (name if name in _api_keywords() else flag)

    return OPTION.sub(keyword, message)


def _api_keywords() -> set[str]:
    """The keyword arguments of `cnnkit.run` and `cnnkit.run_study`: every run setting and trainer option."""
    from dataclasses import fields

    from cnnkit.training.config import SETTINGS
    from cnnkit.training.runner import TrainerOptions

    return {s.name for s in SETTINGS} | {f.name for f in fields(TrainerOptions)} | {
        "seeds", "jobs", "executor", "ray_address", "lang",
    }  # fmt: skip


def _reworded(exc: CnnkitError, message: str) -> CnnkitError:
    """A copy of `exc` (its type, attributes and exit code) saying `message`; `exc` itself is left as it is."""
    copy = type(exc).__new__(type(exc))
    copy.__dict__.update(exc.__dict__)
    copy.args = (message,)
    return copy


@contextmanager
def as_cnnkit_errors() -> Iterator[None]:
    """For the Python API: cnnkit's own errors propagate in the API's words (`worded`), known runtime failures
    raise RunError with the command's line and exit code, also in those words; bugs and Ctrl-C propagate as they
    are (a notebook shows their traceback)."""
    token = _CALLER.set(Caller.API)
    try:
        yield
    except CnnkitError as exc:
        api = worded(str(exc), Caller.API)
        if api == str(exc):
            raise
        raise _reworded(exc, api).with_traceback(exc.__traceback__) from None
    except Exception as exc:
        failure = failure_of(exc)
        if not failure.known:
            raise
        error = RunError(failure.line)
        error.exit_code = failure.exit_code  # 1, as the command exits; RunError's own is 2 (a refused setting)
        raise error from exc
    finally:
        _CALLER.reset(token)
