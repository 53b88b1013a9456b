"""`--executor ray`: each run a Ray task with its own CPUs (and a share of a GPU); results on a shared filesystem.

Needs the optional extra `cnnkit[ray]`. Without `--ray-address` a local Ray instance is started for the study
and shut down after it. Workers write to the same OUT path, so on a cluster it must be a filesystem they share.

Ray keeps its worker processes for the next task of the same function (`max_calls=0`, on GPUs too), so, as with
the local workers, a Ray worker pays its start-up once and keeps the datasets it has loaded (`cnnkit.data.cache`).
Tasks rather than one actor per slot: Ray interrupts a running task (KeyboardInterrupt, the run stops at its next
batch with its checkpoints) but only flags a running actor task, and Ctrl-C must stop the runs.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Any

from cnnkit.console.streams import progress_stream
from cnnkit.errors import UsageError
from cnnkit.states import JobState
from cnnkit.studies.jobs import Job, train_job
from cnnkit.studies.messages import JobReport


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'cnnkit[ray]'") from None
    return ray


def _start(ray: Any, address: str | None) -> bool:
    """Connect to `address` or start a local instance; True when this process started it."""
    if ray.is_initialized():
        return False
    settings = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:  # Ray runs workers at niceness 15: on a busy machine its training would barely move
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(address=address, **settings)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot reach Ray at {address or 'a new local instance'}: {exc}") from exc
    return True


def task_resources(ray: Any, asked: int | None, runs: int, gpu: bool) -> tuple[int, float, int]:
    """(CPUs per task, GPU share per task, tasks at once) from the cluster's resources and --jobs."""
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    gpus = float(resources.get("GPU", 0)) if gpu else 0.0
    at_once = max(1, min(asked or cpus, runs, cpus))
    return max(1, cpus // at_once), min(1.0, gpus / at_once) if gpus else 0.0, at_once


class RayRunner:
    """Ray, connected (or started) for the whole study; called with jobs, it runs them as tasks."""

    def __init__(self, asked: int | None, address: str | None) -> None:
        self.asked, self.address = asked, address
        self.ray: Any = None
        self.started = False
        self._task: Any = None  # for jobs given one at a time (`submit`)
        self._cpus, self.capacity, self._total = 1, 1, 1
        self._running: dict[Any, tuple[Job, float]] = {}

    def __enter__(self) -> RayRunner:
        self.ray = _ray()
        self.started = _start(self.ray, self.address)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.ray.shutdown()

    def __call__(self, jobs: list[Job]) -> list[JobReport]:
        """Run every job as a Ray task, at most `asked` (None: as resources allow) at once."""
        ray = self.ray
        cpus, gpu_share, at_once = task_resources(ray, self.asked, len(jobs), jobs[0].options.accelerator != "cpu")
        print(
            f"ray: {len(jobs)} run(s), {at_once} at once, {cpus} CPU(s){f' and {gpu_share:g} GPU' if gpu_share else ''}"
            " each",
            file=progress_stream(),
            flush=True,
        )
        task = ray.remote(num_cpus=cpus, num_gpus=gpu_share, max_retries=0, max_calls=0)(train_job)
        waiting = [replace(job, threads=cpus, command_pid=None) for job in jobs]
        running: dict[Any, tuple[Job, float]] = {}
        reports = []
        try:
            while waiting or running:
                while waiting and len(running) < at_once:
                    job = waiting.pop(0)
                    running[task.remote(job)] = (job, time.monotonic())
                    print(f"[{job.name}] submitted to Ray", file=progress_stream(), flush=True)
                done, _ = ray.wait(list(running), num_returns=1)
                job, since = running.pop(done[0])
                report = _result(ray, done[0], job)
                reports.append(report)
                seconds = time.monotonic() - since
                print(
                    f"[{job.name}] {report.state}{f': {report.message}' if report.message else ''} ({seconds:.1f} s)",
                    file=progress_stream(),
                    flush=True,
                )
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref)  # a KeyboardInterrupt in the task: it stops at the next batch, checkpoints kept
            raise
        return reports

    # -- jobs one at a time, as a search hands them out ---------------------------------------------------------
    def open_slots(self, runs: int, gpu: bool) -> int:
        """Size the tasks for up to `runs` jobs given one at a time; how many may run at once (`capacity`)."""
        ray = self.ray
        self._total = runs
        self._cpus, gpu_share, self.capacity = task_resources(ray, self.asked, runs, gpu)
        self._task = ray.remote(num_cpus=self._cpus, num_gpus=gpu_share, max_retries=0, max_calls=0)(train_job)
        print(
            f"ray: up to {self.capacity} at once, {self._cpus} CPU(s){f' and {gpu_share:g} GPU' if gpu_share else ''}"
            " each",
            file=progress_stream(),
            flush=True,
        )
        return self.capacity

    def submit(self, job: Job) -> None:
        if self._task is None:
            self.open_slots(1, job.options.accelerator != "cpu")
        ref = self._task.remote(replace(job, threads=self._cpus, command_pid=None))
        self._running[ref] = (job, time.monotonic())
        print(f"[{job.number}/{self._total}] {job.label}: submitted to Ray", file=progress_stream(), flush=True)

    def running(self) -> int:
        return len(self._running)

    def wait(self) -> list[JobReport]:
        """Wait until one submitted job has ended: its report."""
        if not self._running:
            return []
        ray = self.ray
        try:
            done, _ = ray.wait(list(self._running), num_returns=1)
        except KeyboardInterrupt:
            for ref in self._running:
                ray.cancel(ref)
            raise
        job, since = self._running.pop(done[0])
        report = _result(ray, done[0], job)
        message = f": {report.message}" if report.message else ""
        print(
            f"[{job.name}] {report.state}{message} ({time.monotonic() - since:.1f} s)",
            file=progress_stream(),
            flush=True,
        )
        return [report]


def _result(ray: Any, ref: Any, job: Job) -> JobReport:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return JobReport(job.name, JobState.FAILED, f"Ray task failed: {first}", 1)
