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
from cnnkit.console.progress import epoch_forms, progress_bar, shorten

BAR_WIDTH = 20
NARROW_BAR_WIDTH = 10  # below WIDE_COLUMNS
WIDE_COLUMNS = 100
NAME_MIN = 16  # and never shortened below this
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

    def render(self, width: int, now: float, bar_width: int = BAR_WIDTH, name: str = "") -> str:
        """`name  Epoch k/N [bar] done/total  ETA ...`, its name (or the `name` given) shortened to `width`."""
        return f"{shorten(name or self.name, width):<{width}}  {self.status(now, bar_width)}".rstrip()

    def status(self, now: float, bar_width: int = BAR_WIDTH) -> str:
        """What follows the name: `Epoch k/N [bar] done/total  ETA ...`, `testing [bar] ...` or `starting`."""
        if not self.epochs:
            return "starting"
        left = self.seconds_left(now)
        eta = f"ETA {format_duration(left)}" if left is not None else ""
        bar = progress_bar(self.batch, self.batches, bar_width) if self.batches else ""
        stage = "testing" if self.testing else f"Epoch {self.epoch}/{self.epochs}"
        return f"{stage} {bar}  {eta}".rstrip()


class JobBoard:
    """The console of side-by-side jobs (see the module docstring); `live` draws the block (a terminal only)."""

    def __init__(self, stream: TextIO, live: bool, interval: float = 0.2) -> None:
        self.stream, self.live, self.interval = stream, live, interval
        self.jobs: dict[str, JobLine] = {}
        self.aliases: dict[str, str] = {}  # a run's short name (`3/7`, its header's number) where its own is too long
        self.footer = ""
        self._drawn = 0  # lines of the block on screen
        self._last = 0.0

    def line(self, name: str | None, text: str) -> None:
        """A line that stays: `[name] text` (or `text`), above the block; on a terminal a long name is shortened
        (in the middle) for the text to fit where it can."""
        columns = self.columns()
        if name and columns is not None and len(name) + 3 + len(text) > columns - 1:
            name = self.aliases.get(name) or shorten(name, max(min(len(name), NAME_MIN), columns - 1 - len(text) - 3))
        self._erase()
        self.stream.write(f"[{name}] {text}\n" if name else f"{text}\n")
        self.refresh(force=True)

    def epoch_line(
        self, name: str, epoch: int, epochs: int, seconds: float, metrics: dict[str, float], eta: str = ""
    ) -> None:
        """A run's epoch line, `[name] Epoch 3/10 - ...`; on a terminal the first of its forms (`epoch_forms`) that
        fits: Keras' words or short labels after the run's name, else after its header's number (`[3/7]`)."""
        forms = epoch_forms(epoch, epochs, seconds, metrics, eta)
        columns = self.columns()
        if columns is None:
            self.line(name, forms[0])
            return
        short = self.aliases.get(name, shorten(name, NAME_MIN))
        tries = [(name, form) for form in forms[:2]] + [(short, form) for form in forms]  # words before the name
        for shown, form in tries:
            if len(shown) + 3 + len(form) <= columns - 1:
                self.line(shown, form)
                return
        self.line(short, forms[-1][: max(columns - 1 - len(short) - 3, 1)])

    def columns(self) -> int | None:
        """The terminal's width when the block is drawn there; None into a file (lines are never cut there)."""
        return shutil.get_terminal_size((100, 20)).columns if self.live else None

    def start(self, name: str, alias: str = "") -> None:
        """A job starts; `alias` names it where its name does not fit (its header's `3/7`)."""
        if alias:
            self.aliases[name] = alias
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
        bar_width = BAR_WIDTH if columns >= WIDE_COLUMNS else NARROW_BAR_WIDTH
        longest = max((len(name) for name in self.jobs), default=0)
        tail = max((len(job.status(now, bar_width)) + 2 for job in self.jobs.values()), default=0)
        names = {name: name for name in self.jobs}
        if longest + tail > columns:  # names give way to the bar and the ETA: their headers' numbers where known
            names = {name: f"[{self.aliases[name]}]" if name in self.aliases else name for name in self.jobs}
            longest = max((len(shown) for shown in names.values()), default=0)
        width = max(min(longest, NAME_MIN), min(longest, columns - tail))
        lines = [job.render(width, now, bar_width, names[name]) for name, job in self.jobs.items()]
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
