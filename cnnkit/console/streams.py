"""Output of job processes: every line prefixed with the run's name, progress-bar redraws dropped."""

from __future__ import annotations

import io
from typing import TextIO


class PrefixedStream(io.TextIOBase):
    """A text stream that writes whole lines to `target`, each as `[prefix] line`, in one write call.

    Writes of at most PIPE_BUF bytes to a pipe are atomic, so lines of several job processes sharing a terminal or
    a log never interleave mid-line. A carriage return (a redrawn progress bar) discards the line so far.
    """

    def __init__(self, target: TextIO, prefix: str) -> None:
        super().__init__()
        self.target, self.prefix = target, prefix
        self._line = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *complete, self._line = (self._line + text).split("\n")
        for line in complete:
            shown = line.rsplit("\r", 1)[-1]
            if shown.strip():
                self.target.write(f"[{self.prefix}] {shown}\n")
        if complete:
            self.target.flush()
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")
