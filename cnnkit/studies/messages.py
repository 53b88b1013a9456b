"""What a job worker and its command say to each other (`cnnkit.studies.workers`), one frozen dataclass per kind,
and `JobReport`, how a job ended, which a worker, a Ray task and the serial executor all hand back.

They cross multiprocessing pipes and Ray, so they are pickled: plain data only, defined at module level.
The command sends a worker a `cnnkit.studies.jobs.Job` to train, or `Stop`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnkit.failures import Failure, FailureKind
from cnnkit.states import JobState


@dataclass(frozen=True)
class Stop:
    """Command to worker: no more jobs; exit."""


@dataclass(frozen=True)
class Ready:
    """The worker has started up (its imports are done) and takes jobs."""


@dataclass(frozen=True)
class Line:
    """A line the worker printed (its own output, its run's epoch lines)."""

    text: str


@dataclass(frozen=True)
class Batch:
    """Within-epoch progress of the worker's run, for its live line (`testing`: batches of a test pass)."""

    epoch: int
    epochs: int
    done: int
    total: int
    testing: bool = False


@dataclass(frozen=True)
class Started:
    """The worker's run has its data: its size, for the study's clock."""

    train_images: int
    epochs_done: int


@dataclass(frozen=True)
class EpochDone:
    """The worker's run finished an epoch in `seconds`."""

    epochs_done: int
    seconds: float
    epochs: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # the epoch's figures, for its line


@dataclass(frozen=True)
class JobReport:
    """How a run ended (a `JobState`); `message` and `exit_code` say why it failed or was interrupted.

    `timings` (seconds): `total` in the job, of it `training` (with validation) and `testing`, the rest `overhead`
    (data, set-up, writing results); `start-up` for a worker's first job (its imports, before the job came).
    """

    name: str
    state: JobState
    message: str = ""
    exit_code: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def trained(cls, name: str, skipped: bool, timings: dict[str, float]) -> JobReport:
        """The report of a job that ran to its end: trained here, or skipped as complete already."""
        return cls(name, JobState.SKIPPED if skipped else JobState.DONE, timings=timings)

    @classmethod
    def of_failure(cls, name: str, failure: Failure) -> JobReport:
        """The report of a job that ended in `failure`. A locked run is no failure: the study waits for it."""
        if failure.kind is FailureKind.LOCKED:
            return cls(name, JobState.LOCKED, failure.message)
        state = JobState.INTERRUPTED if failure.kind is FailureKind.INTERRUPTED else JobState.FAILED
        return cls(name, state, failure.line, failure.exit_code)


WorkerMessage = Ready | Line | Batch | Started | EpochDone | JobReport
