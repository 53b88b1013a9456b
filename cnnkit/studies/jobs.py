"""One run of a study as a job: what to train and where, and `train_job`, the one way in for every executor (one
at a time here, the local workers, Ray tasks), which says how it ended (a `cnnkit.studies.messages.JobReport`).
Nothing here imports torch until a job trains."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cnnkit.console.progress import RunEvents, RunProgress, run_label
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.failures import FailureKind, failure_of
from cnnkit.states import Phase
from cnnkit.studies.messages import JobReport


@dataclass(frozen=True)
class Job:
    """One run to train, with where its process may run (threads, GPU) and the study.json it belongs to."""

    config: Any  # RunConfig
    options: Any  # TrainerOptions
    number: int  # 1-based place in the study, for `[k/N]`
    out: Path
    study: str
    fresh: bool
    manifest: dict[str, Any] | None = None
    threads: int | None = None
    gpu: str | None = None  # the CUDA_VISIBLE_DEVICES value of its process
    command_pid: int | None = None
    trial: Any = None  # a search's trial (cnnkit.studies.optuna_bridge.TrialTicket): trained as one, never tested
    title: str | None = None  # its console label, when not the run's own (a trial's: number and sampled values)

    @property
    def name(self) -> str:
        return f"trial {self.trial.number}" if self.trial is not None else str(self.config.dir_name)

    @property
    def run_dir(self) -> Path:
        if self.trial is not None:
            return Path(self.trial.run_dir(self.out, self.study))
        return self.out / self.study / self.name

    @property
    def label(self) -> str:
        """How the console names the job: its title, else the run's label (`mnist · pooling_cnn · adam · seed 0`)."""
        return self.title or run_label(self.config)

    def finished(self) -> dict[str, Any] | None:
        """The job's result.json when its run (or trial) is complete, else None."""
        from cnnkit.results.reading import finished_result, finished_trial

        return (finished_trial if self.trial is not None else finished_result)(self.run_dir, quiet=True)


class JobFailed(CnnkitError):
    """A run in a job process or Ray task failed. Its executor has shown the failure's own line already, so the
    command's last line only names the run (`report.message` keeps the line)."""

    def __init__(self, report: JobReport) -> None:
        super().__init__(f"{report.name} failed (its line above says why); the study stops there")
        self.report = report
        self.exit_code = report.exit_code or 1


class JobTimer:
    """`RunEvents` that time a job's training and testing (the rest is overhead); batches go on to `forward`."""

    def __init__(self, forward: RunEvents | None = None) -> None:
        self.forward = forward
        self.started = time.monotonic()
        self.spent = {"training": 0.0, "testing": 0.0}
        self._since = self.started

    def batch(self, epoch: int, epochs: int, done: int, total: int, testing: bool = False) -> None:
        if self.forward is not None:
            self.forward.batch(epoch, epochs, done, total, testing)

    def phase(self, phase: Phase) -> None:
        now = time.monotonic()
        if phase.starts:
            self._since = now
        else:
            self.spent[phase.stage] += now - self._since

    def timings(self) -> dict[str, float]:
        total = time.monotonic() - self.started
        return {"total": total, **self.spent, "overhead": max(total - sum(self.spent.values()), 0.0)}


def train_job(job: Job, progress: RunProgress | None = None) -> JobReport:
    """Train one run in this process and say how it ended: a failure a user can act on, or Ctrl-C, is reported
    (`cnnkit.failures`); a bug is raised (a Ray task shows its traceback; a worker reports it, `workers._train`)."""
    try:
        return _train_and_time(job, progress)
    except (Exception, KeyboardInterrupt) as exc:
        failure = failure_of(exc)
        if failure.kind is FailureKind.INTERNAL:
            raise
        return JobReport.of_failure(job.name, failure)


def _train_and_time(job: Job, progress: RunProgress | None) -> JobReport:
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    timer = JobTimer(progress.events if progress else None)
    progress = progress or RunProgress(job.label)
    outcome = execute_job(job, replace(progress, events=timer))
    return JobReport.trained(job.name, outcome.skipped, timer.timings())


def execute_job(job: Job, progress: RunProgress | None = None) -> Any:
    """`runner.execute` for a job; study.json is written just before the run's directory is first touched."""
    from cnnkit.storage.atomic import write_json_atomic
    from cnnkit.training.runner import execute

    def write_manifest() -> None:
        if job.manifest is None:
            return
        try:
            write_json_atomic(job.out / job.study / "study.json", job.manifest)
        except CnnkitError:
            raise
        except OSError as exc:
            raise UsageError(
                f"cannot write to {job.out / job.study}: {exc.strerror or exc}; choose another --out"
            ) from exc

    return execute(
        job.config,
        job.options,
        job.out,
        job.study,
        job.fresh,
        before_write=write_manifest,
        progress=progress,
        trial=job.trial,
    )


def describe_timings(timings: dict[str, float]) -> str:
    """`start-up 9.8s, overhead 1.1s, training 20.0s, testing 3.0s` (for --verbose and benchmarks/jobs.py)."""
    names = ("start-up", "overhead", "training", "testing")
    return ", ".join(f"{name} {timings[name]:.1f}s" for name in names if name in timings)
