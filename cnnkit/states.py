"""Where a job, a run and its training stand, as enums (after Lightning's trainer/states.py).

Job and run states are `str` enums whose values are the words cnnkit writes (`cnnkit status --json`, the Ray
lines), so a member prints, formats and serializes as that word.
"""

from __future__ import annotations

from enum import Enum


class Word(str, Enum):
    """A `str` enum that prints and formats as its value (`enum.StrEnum` from Python 3.11, on 3.10 too)."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)


class JobState(Word):
    """How a study's job ended."""

    DONE = "done"  # trained here
    SKIPPED = "skipped"  # complete already
    LOCKED = "locked"  # another process trains it
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class RunState(Word):
    """Where a run directory stands for `cnnkit status` (see `cnnkit.studies.status`)."""

    FINISHED = "finished"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    PENDING = "pending"


class Phase(Enum):
    """The edges of a run's training and testing, told to its `RunEvents` (for the job timings)."""

    TRAIN_START = "train_start"
    TRAIN_END = "train_end"
    TEST_START = "test_start"
    TEST_END = "test_end"

    @property
    def starts(self) -> bool:
        return self in (Phase.TRAIN_START, Phase.TEST_START)

    @property
    def stage(self) -> str:
        """`training` (with validation) or `testing`: the timing it belongs to."""
        return "training" if self in (Phase.TRAIN_START, Phase.TRAIN_END) else "testing"


class TrialState(Word):
    """Where a search's trial stands (`StudyResult.trials()`, `cnnkit status`, trials.csv).

    Complete and pruned trials are finished: they count towards the search's `trials`; a failed one does not."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    RUNNING = "running"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED)
