"""Running a study's runs: one at a time in this process, side by side in long-lived workers, or on Ray.

However they run, each run takes its directory's lock; runs that other processes (or machines) hold are skipped
and waited for at the end, and taken over when their holder died before finishing them. Every executor trains a run
through `cnnkit.studies.jobs.train_job` (or, one at a time, `execute_job` with the study's console).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cnnkit.console.progress import plural
from cnnkit.console.streams import progress_stream
from cnnkit.console.study_progress import StudyProgress
from cnnkit.results.reading import finished_result
from cnnkit.states import JobState
from cnnkit.storage.locks import RunLocked, command_pid, lock_holder
from cnnkit.studies.jobs import Job, JobFailed, JobTimer, describe_timings, execute_job
from cnnkit.studies.messages import JobReport
from cnnkit.studies.order import longest_first
from cnnkit.studies.resources import (
    auto_jobs,
    check_parallel_options,
    one_device_each,
    usable_cores,
    visible_gpus,
)

WAIT_POLL_SECONDS = 2.0

Backend = Callable[[list[Job]], list[JobReport]]


def run_serial(jobs: list[Job], progress: StudyProgress | None = None) -> list[JobReport]:
    """One run after another in this process, with its header, epoch lines and the study's ETA; errors propagate."""
    reports = []
    for job in jobs:
        run_progress = progress.run(job.number - 1) if progress else None
        timer = JobTimer()
        try:
            outcome = execute_job(job, replace(run_progress, events=timer) if run_progress else None)
        except RunLocked as exc:
            print(f"    {exc}", file=progress_stream(), flush=True)
            reports.append(JobReport(job.name, JobState.LOCKED, str(exc)))
            if progress:
                progress.settle(job.number - 1, trained=False)
            continue
        if progress:
            progress.finished(job.number - 1, outcome)
        if job.options.verbose and not outcome.skipped:
            print(f"    timings: {describe_timings(timer.timings())}", file=progress_stream(), flush=True)
        reports.append(JobReport.trained(job.name, outcome.skipped, timer.timings()))
    return reports


def execute_planned(
    planned: Sequence[Any],
    options: Any,
    out: Path,
    study: str,
    manifest: dict[str, Any],
    *,
    fresh: bool = False,
    jobs: int | None = 1,
    executor: str = "local",
    ray_address: str | None = None,
    progress: StudyProgress | None = None,
    before_training: Callable[[], None] | None = None,
    registries: Any = None,
) -> list[Any]:
    """Train every planned RunConfig (skipping finished ones); the RunOutcomes once none is left to any process.

    `jobs`: runs at once (None: auto, one at a time when the options train a run on several devices).
    `before_training` (e.g. the datasets check) runs once the executor is open: job workers start up meanwhile.
    With `registries`, local workers take the longest runs first (`cnnkit.studies.order`)."""
    from cnnkit.training.runner import RunOutcome

    out = Path(out).absolute()  # workers and Ray may start elsewhere
    if executor == "ray" or (jobs or 1) > 1:
        check_parallel_options(options)
    left = _left(planned, out / study, fresh)
    parallel = jobs or _auto(left, options, executor)
    if executor == "local" and jobs and jobs > usable_cores() and len(left) > 1:
        print(
            f"note: {jobs} jobs at once on {plural(usable_cores(), 'core')}: they share the cores, which is seldom "
            f"faster than {usable_cores()} at once",
            file=progress_stream(),
            flush=True,
        )
    todo = [
        Job(config, options, number, out, study, fresh, manifest, command_pid=command_pid())
        for number, config in enumerate(planned, start=1)
    ]
    if parallel > 1 and executor == "local" and registries is not None:
        todo = longest_first(todo, registries)
        if progress is not None:
            progress.order = [job.number - 1 for job in todo]
    reports: dict[str, JobReport] = {}
    if executor == "ray" and before_training is not None:  # Ray itself starts slowly: check before starting it
        before_training()
        before_training = None
    with _backend(executor, jobs, parallel, ray_address, len(planned), progress, options, len(left)) as backend:
        if before_training is not None:
            before_training()
        while todo:
            for report in backend(todo):
                reports[report.name] = report
                if report.state is JobState.INTERRUPTED:
                    raise KeyboardInterrupt
                if report.state is JobState.FAILED:
                    raise JobFailed(report)
            held = [job for job in todo if reports[job.name].state is JobState.LOCKED]
            todo = [replace(job, fresh=False) for job in wait_for_others(held)]
    outcomes = []
    for config in planned:
        run_dir = out / study / config.dir_name
        trained_here = reports[config.dir_name].state is JobState.DONE
        outcomes.append(RunOutcome(run_dir, finished_result(run_dir, quiet=True) or {}, skipped=not trained_here))
    return outcomes


def _left(planned: Sequence[Any], study_dir: Path, fresh: bool) -> list[Any]:
    """The planned runs still to train."""
    return [c for c in planned if fresh or finished_result(study_dir / c.dir_name, quiet=True) is None]


def _auto(left: Sequence[Any], options: Any, executor: str) -> int:
    """`--jobs auto` for the runs left to train (one at a time when a run trains on several devices)."""
    if executor != "local":
        return 1  # Ray sizes its tasks from the cluster (run_ray)
    if not one_device_each(options):
        return 1
    gpus = len(visible_gpus(options)) if left else 0
    parallel = auto_jobs(len(left), gpus)
    if parallel > 1:
        print(
            f"--jobs auto: {parallel} at once ({usable_cores()} cores{f', {gpus} GPUs' if gpus else ''})",
            file=progress_stream(),
            flush=True,
        )
    return parallel


@contextlib.contextmanager
def _backend(
    executor: str,
    asked: int | None,
    parallel: int,
    ray_address: str | None,
    total: int,
    progress: Any,
    options: Any,
    left: int,
) -> Iterator[Backend]:
    """The executor, kept for the whole study (workers and Ray started once, closed at the end).

    Local workers are spawned at once, one per run left up to `parallel`, so that their start-up (imports)
    overlaps with what the command does before the first run."""
    if executor == "ray":
        from cnnkit.studies.ray_executor import RayRunner

        with RayRunner(asked, ray_address) as runner:
            yield runner
        return
    if parallel == 1:
        yield lambda jobs: run_serial(jobs, progress)
        return
    from cnnkit.studies.workers import WorkerPool

    if progress is not None:
        progress.slots = parallel
    pool = WorkerPool(parallel, total, progress, max(1, usable_cores() // parallel), visible_gpus(options))
    try:
        pool.prestart(min(parallel, left))
        yield pool
    finally:
        pool.close()


def wait_for_others(held: list[Job]) -> list[Job]:
    """Wait until no other process holds these runs; the ones their holders left unfinished (to train now).

    A run found held earlier in the study may have finished meanwhile: it is neither waited for nor named."""
    held = [job for job in held if finished_result(job.run_dir, quiet=True) is None]
    if not held:
        return []
    print(
        f"waiting for {len(held)} run(s) that other processes are training: {', '.join(job.name for job in held)}",
        file=progress_stream(),
        flush=True,
    )
    remaining, unfinished = list(held), []
    while remaining:
        for job in list(remaining):
            if lock_holder(job.run_dir) is None:
                remaining.remove(job)
                if finished_result(job.run_dir, quiet=True) is None:
                    print(f"[{job.name}] its trainer stopped before the end; training it here", file=progress_stream())
                    unfinished.append(job)
        if remaining:
            time.sleep(WAIT_POLL_SECONDS)
    if not unfinished and held:
        print("the other processes finished their runs", file=progress_stream(), flush=True)
    return unfinished


# ------------------------------------------------------------------------------------------ jobs one at a time
class SerialSlots:
    """One job at a time in this process, given one at a time (a search's trials without --jobs): its header,
    its epoch lines and its closing line."""

    capacity = 1

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total, self.quiet = total, quiet
        self._job: Job | None = None

    def submit(self, job: Job) -> None:
        self._job = job

    def running(self) -> int:
        return int(self._job is not None)

    def wait(self) -> list[JobReport]:
        """Train the submitted job now: its report (a failure a user can act on is reported, a bug raised)."""
        from cnnkit.console.progress import RunProgress, plural, result_line
        from cnnkit.studies.jobs import train_job

        job, self._job = self._job, None
        if job is None:
            return []
        title = f"[{job.number}/{self.total}] {job.label}"
        print(f"{title} — {plural(job.config.epochs, 'epoch')}", file=progress_stream(), flush=True)
        report = train_job(job, RunProgress(title, announced=True))
        result = job.finished() if report.state in (JobState.DONE, JobState.SKIPPED) else None
        if report.state is JobState.LOCKED:
            print(f"    {report.message}", file=progress_stream(), flush=True)
        elif result is not None and not self.quiet:
            print(f"    {result_line(result)}", file=progress_stream(), flush=True)
        return [report]


@contextlib.contextmanager
def open_slots(
    executor: str, asked: int | None, parallel: int, ray_address: str | None, total: int, options: Any
) -> Iterator[Any]:
    """An executor that takes jobs one at a time (`submit`, `running`, `wait`, `capacity`), for a search whose
    next trial is asked for only once a slot is free: this process, `parallel` local workers, or Ray (`asked` at
    once, None: as its resources allow)."""
    if executor == "ray":
        from cnnkit.studies.ray_executor import RayRunner

        with RayRunner(asked, ray_address) as runner:
            runner.open_slots(total, options.accelerator != "cpu")
            yield runner
        return
    if parallel <= 1:
        yield SerialSlots(total, options.quiet)
        return
    from cnnkit.studies.workers import WorkerPool

    pool = WorkerPool(parallel, total, None, max(1, usable_cores() // parallel), visible_gpus(options))
    pool.prestart(min(parallel, total))
    try:
        yield pool
    finally:
        pool.close()


def auto_parallel(jobs: int | None, runs: int, options: Any, executor: str) -> int:
    """Jobs at once for `runs` runs: `jobs` when given, else as `--jobs auto` decides (`_auto`)."""
    return jobs or _auto([None] * runs, options, executor)
