"""Output of job workers: whole lines handed on one by one, progress-bar redraws dropped."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import TextIO


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (whose stderr a notebook shades like an error)."""
    return type(sys.stderr).__module__.startswith("ipykernel")


def progress_stream() -> TextIO:
    """Where progress lines go: stderr (beside the results on stdout, which a pipe or a log keeps apart), or in a
    notebook stdout, so that a study's lines read as output and not as errors."""
    return sys.stdout if in_notebook() else sys.stderr


class LineStream(io.TextIOBase):
    """A text stream that hands each complete line to `emit` (without its newline).

    A carriage return (a redrawn progress bar) discards the line so far; blank lines are dropped.
    """

    def __init__(self, emit: Callable[[str], None], encoding: str = "utf-8") -> None:
        super().__init__()
        self.emit, self._encoding = emit, encoding
        self._line = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *complete, self._line = (self._line + text).split("\n")
        for line in complete:
            shown = line.rsplit("\r", 1)[-1]
            if shown.strip():
                self.emit(shown)
        return len(text)

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding
