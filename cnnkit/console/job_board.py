"""What side-by-side jobs show: each job's lines prefixed with its run, and on a terminal a live block below them.

Into a file or pipe every line is plain, `[run] line`. On a terminal the same lines scroll above a block that is
redrawn in place (at most every `interval` seconds): one line per running job - its run, epoch k/N, a bar, the run's
ETA - and a last line with the study's. Lines are cut to the terminal's width, so the block never wraps.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import TextIO

from cnnkit.console.eta import format_duration
from cnnkit.console.progress import progress_bar

BAR_WIDTH = 20
UP_AND_CLEAR = "\x1b[{n}F\x1b[J"  # to the start of the line n lines up, then clear to the end of the screen


@dataclass
class JobLine:
    """Where one running job stands."""

    name: str
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    started: float = 0.0  # when its current epoch (or test pass) began (monotonic)
    epoch_seconds: float | None = None  # its last whole epoch
    testing: bool = False  # its epochs are trained: a test pass is under way

    def seconds_left(self, now: float) -> float | None:
        """The run's training time left: this epoch's pace, then whole epochs at the last one's duration (while
        testing: the test pass's own pace)."""
        if not (self.batch and self.batches):
            return None
        elapsed = now - self.started
        if self.testing:
            return elapsed * (self.batches - self.batch) / self.batch
        per_epoch = self.epoch_seconds or elapsed * self.batches / self.batch
        return max(per_epoch - elapsed, 0.0) + per_epoch * max(self.epochs - self.epoch, 0)

    def render(self, width: int, now: float) -> str:
        if not self.epochs:
            return f"{self.name:<{width}}  starting"
        left = self.seconds_left(now)
        eta = f"ETA {format_duration(left)}" if left is not None else ""
        bar = progress_bar(self.batch, self.batches, BAR_WIDTH) if self.batches else ""
        stage = "testing" if self.testing else f"Epoch {self.epoch}/{self.epochs}"
        return f"{self.name:<{width}}  {stage} {bar}  {eta}".rstrip()


class JobBoard:
    """The console of side-by-side jobs (see the module docstring); `live` draws the block (a terminal only)."""

    def __init__(self, stream: TextIO, live: bool, interval: float = 0.2) -> None:
        self.stream, self.live, self.interval = stream, live, interval
        self.jobs: dict[str, JobLine] = {}
        self.footer = ""
        self._drawn = 0  # lines of the block on screen
        self._last = 0.0

    def line(self, name: str | None, text: str) -> None:
        """A line that stays: `[name] text` (or `text`), above the block."""
        self._erase()
        self.stream.write(f"[{name}] {text}\n" if name else f"{text}\n")
        self.refresh(force=True)

    def start(self, name: str) -> None:
        self.jobs[name] = JobLine(name, started=time.monotonic())
        self.refresh(force=True)

    def batch(self, name: str, epoch: int, epochs: int, done: int, total: int, testing: bool = False) -> None:
        job = self.jobs.setdefault(name, JobLine(name))
        now = time.monotonic()
        if epoch != job.epoch or testing != job.testing or (testing and done < job.batch):  # a new epoch or pass
            job.started, job.testing = now, testing
        job.epoch, job.epochs, job.batch, job.batches = epoch, epochs, done, total
        self.refresh()

    def epoch_done(self, name: str, seconds: float) -> None:
        if name in self.jobs:
            self.jobs[name].epoch_seconds = seconds

    def stop(self, name: str) -> None:
        self.jobs.pop(name, None)
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Redraw the block (on a terminal, at most every `interval` seconds unless `force`)."""
        now = time.monotonic()
        if not self.live or (not force and now - self._last < self.interval):
            self.stream.flush()
            return
        self._last = now
        columns = shutil.get_terminal_size((100, 20)).columns - 1
        width = max((len(name) for name in self.jobs), default=0)
        lines = [job.render(width, now) for job in self.jobs.values()]
        lines += [self.footer] if self.footer and self.jobs else []
        self._erase()
        self.stream.write("".join(f"{line[:columns]}\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)

    def close(self) -> None:
        """Take the block off the screen (the lines above it stay)."""
        self._erase()
        self.stream.flush()

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(UP_AND_CLEAR.format(n=self._drawn))
            self._drawn = 0
