"""`--jobs N`: N worker processes started once per study; each takes the next run as soon as it is free.

A worker pays its start-up (torch, Lightning, on a GPU the CUDA context) once and keeps the datasets it has loaded
(`cnnkit.data.cache`), so its later runs start training at once. Workers are forks of a server that imported torch
and Lightning once and computed nothing (`cnnkit.studies.worker_server`), each in its own process group: Ctrl-C
reaches the command only, which asks each worker to stop at its next batch. A worker whose command was killed
outright (SIGKILL, OOM) notices and stops the same way.

Everything a worker prints comes to the command as messages (its lines, its run's epochs and batches, how the run
ended); the command alone writes to the console (`cnnkit.console.job_board`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from cnnkit.console.eta import format_duration
from cnnkit.console.job_board import JobBoard
from cnnkit.console.progress import RunProgress, plural, result_line
from cnnkit.console.streams import LineStream, progress_stream
from cnnkit.failures import INTERRUPTED, caller, failure_of, worded
from cnnkit.states import JobState, Phase
from cnnkit.studies.jobs import Job, describe_timings, train_job
from cnnkit.studies.messages import (
    Batch,
    EpochDone,
    JobReport,
    Line,
    Ready,
    Started,
    Stop,
    WorkerMessage,
)

STOP_GRACE_SECONDS = 120.0
TICK_SECONDS = 0.2


# ------------------------------------------------------------------------------------------ in a worker process
class _Relay:
    """A worker's side of its pipe: its run's clock and events, sent to the command as messages."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def send(self, message: WorkerMessage) -> None:
        with contextlib.suppress(OSError):  # the command is gone (killed): nobody to tell
            self.conn.send(message)

    def run_started(self, train_images: int, epochs_done: int) -> str:
        self.send(Started(train_images, epochs_done))
        return ""  # the study's ETA is known to the command, which adds it

    def epoch_done(self, epochs_done: int, seconds: float, epochs: int, metrics: dict[str, float]) -> str | None:
        self.send(EpochDone(epochs_done, seconds, epochs, dict(metrics)))
        return None  # the command shows the epoch's line, with the study's ETA, fitted to its terminal

    def batch(self, epoch: int, epochs: int, done: int, total: int, testing: bool = False) -> None:
        self.send(Batch(epoch, epochs, done, total, testing))

    def phase(self, phase: Phase) -> None:
        pass


def _stop_when_orphaned(lifeline: Connection) -> None:
    """A worker whose cnnkit command was killed outright stops its run at the next batch, checkpoints kept,
    instead of training on unseen; the next command resumes it.

    The command holds the other end of `lifeline` and never writes to it, so it reads as ready only once the
    command is gone. (The worker's parent is the fork server, which lives as long as any worker does.)"""

    def watch() -> None:
        with contextlib.suppress(OSError):
            lifeline.poll(None)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _worker_main(conn: Connection, lifeline: Connection, threads: int, gpu: str | None, command_pid: int) -> None:
    """Entry point of a worker: set up once, then train the jobs it is sent until told to `Stop`."""
    os.setpgid(0, 0)  # Ctrl-C reaches the command only; it forwards one SIGINT to each worker
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the fork server ignores it (`worker_server`)
        _stop_when_orphaned(lifeline)
        os.environ["CNNKIT_COMMAND_PID"] = str(command_pid)
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(threads)
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        relay = _Relay(conn)
        _route_output(LineStream(lambda line: relay.send(Line(line))))
        import torch

        import cnnkit.studies.worker_preload  # noqa: F401  (imported already, unless started by spawn)

        torch.set_num_threads(threads)
        relay.send(Ready())
        while not isinstance(job := conn.recv(), Stop):
            report = _train(job, relay)
            relay.send(report)
            if report.state is JobState.INTERRUPTED:
                break
    except (KeyboardInterrupt, EOFError, OSError):  # stopped while idle or starting, or the command is gone
        pass


def _route_output(stream: LineStream) -> None:
    """Send everything the worker prints to the command: sys.stdout, sys.stderr, and the logging handlers that
    were created on the inherited console (Lightning's, made when the fork server imported it)."""
    console = {id(sys.stdout), id(sys.stderr), id(sys.__stdout__), id(sys.__stderr__)}
    sys.stdout = sys.stderr = stream
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if type(handler) is logging.StreamHandler and id(handler.stream) in console:
                handler.setStream(stream)


def _train(job: Job, relay: _Relay) -> JobReport:
    """`train_job`, with a bug (or Ctrl-C before the run's own handler was installed) reported as well."""
    try:
        return train_job(job, RunProgress(job.label, clock=relay, announced=True, events=relay))
    except (Exception, KeyboardInterrupt) as exc:
        return JobReport.of_failure(job.name, failure_of(exc))


# ------------------------------------------------------------------------------------------ in the command
@dataclass
class _Worker:
    slot: int
    process: Any
    conn: Connection
    spawned: float
    ready: bool = False
    lifeline: Connection | None = None  # never written: closed when the command ends (`_stop_when_orphaned`)
    startup: float | None = None  # reported with its first job
    job: Job | None = None
    since: float = 0.0


class WorkerPool:
    """Up to `slots` workers for the runs of a study; called with jobs until none is left, then closed."""

    def __init__(self, slots: int, total: int, progress: Any, threads: int, gpus: list[str]) -> None:
        from cnnkit.studies.worker_server import worker_context

        self.slots, self.total, self.progress, self.threads, self.gpus = slots, total, progress, threads, gpus
        self.context = worker_context()
        self.workers: list[_Worker] = []
        quiet = progress is not None and progress.quiet
        stream = progress_stream()
        self.board = JobBoard(stream, live=not quiet and stream.isatty())
        self.verbose = False
        self._queued: deque[Job] = deque()  # jobs given one at a time (`submit`), for the next free worker

    # -- the study's runs -----------------------------------------------------------------------------------
    def __call__(self, jobs: list[Job]) -> list[JobReport]:
        """Train `jobs`, `slots` at once; a failure stops new launches. Reports of every job started or skipped."""
        reports: dict[str, JobReport] = {}
        waiting: deque[Job] = deque()
        from cnnkit.training.runner import check_run_directory

        for job in jobs:
            self.verbose = bool(job.options.verbose)
            check_run_directory(job.run_dir, job.config, job.fresh)  # as one at a time: another configuration's
            if not job.fresh and job.finished() is not None:
                reports[job.name] = JobReport(job.name, JobState.SKIPPED)
                self._finish(job, reports[job.name], 0.0)
            else:
                waiting.append(job)
        try:
            while waiting or any(worker.job for worker in self.workers):
                self._dispatch(waiting)
                for report in self._poll():
                    reports[report.name] = report
                    if report.state in (JobState.FAILED, JobState.INTERRUPTED):
                        waiting.clear()
        except KeyboardInterrupt:
            self._stop()
            raise
        return list(reports.values())

    # -- jobs one at a time, as a search hands them out ---------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self.slots

    def submit(self, job: Job) -> None:
        """Queue `job` for the next free worker (called while `running()` is below `capacity`)."""
        self.verbose = bool(job.options.verbose)
        self._queued.append(job)

    def running(self) -> int:
        """Jobs submitted and not ended yet."""
        return len(self._queued) + sum(worker.job is not None for worker in self.workers)

    def wait(self) -> list[JobReport]:
        """Start what is queued, then wait until at least one job has ended: the reports of those that did."""
        try:
            while self.running():
                self._dispatch(self._queued)
                reports = self._poll()
                if reports:
                    return reports
            return []
        except KeyboardInterrupt:
            self._queued.clear()
            self._stop()
            raise

    def prestart(self, count: int) -> None:
        """Spawn `count` workers now (at most `slots`), before any job is given to them."""
        while len(self.workers) < min(count, self.slots):
            self._spawn()

    def close(self) -> None:
        """Tell idle workers to exit, and wait for them (one still starting up is stopped at once)."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.conn.send(Stop())
        for worker in self.workers:
            worker.process.join(10.0 if worker.ready else 0.0)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
        self.workers.clear()
        self.board.close()

    # -- workers --------------------------------------------------------------------------------------------
    def _dispatch(self, waiting: deque[Job]) -> None:
        for worker in self.workers:
            if waiting and worker.ready and worker.job is None:
                self._start(worker, waiting.popleft())
        starting = sum(not worker.ready for worker in self.workers)
        while len(waiting) > starting and len(self.workers) < self.slots:
            self._spawn()
            starting += 1

    def _spawn(self) -> None:
        used = {worker.slot for worker in self.workers}
        slot = min(set(range(self.slots)) - used)
        gpu = self.gpus[slot % len(self.gpus)] if self.gpus else None
        ours, theirs = self.context.Pipe(duplex=True)
        lifeline, held = self.context.Pipe(duplex=False)
        spawned = time.monotonic()  # start() waits for the fork server's imports where they are not done yet
        process = self.context.Process(
            target=_worker_main,
            args=(theirs, lifeline, self.threads, gpu, os.getpid()),
            name=f"cnnkit-job-{slot + 1}",
        )
        process.start()
        theirs.close()
        lifeline.close()
        self.workers.append(_Worker(slot, process, ours, spawned, lifeline=held))

    def _start(self, worker: _Worker, job: Job) -> None:
        gpu = self.gpus[worker.slot % len(self.gpus)] if self.gpus else None
        worker.job, worker.since = replace(job, threads=self.threads, gpu=gpu), time.monotonic()
        worker.conn.send(worker.job)
        where = f"GPU {gpu}" if gpu is not None else plural(self.threads, "thread")
        self.board.line(
            None,
            f"[{job.number}/{self.total}] {job.label} — {plural(job.config.epochs, 'epoch')}, "
            f"started: job {worker.slot + 1}, {where}",
        )
        if self.progress is not None:
            self.progress.begin(job.number - 1)
        self._footer()
        self.board.start(job.name, f"{job.number}/{self.total}")

    def _poll(self) -> list[JobReport]:
        """Handle what the workers said within one tick; the reports of runs that ended."""
        reports = []
        sentinels = {worker.process.sentinel: worker for worker in self.workers}
        ready = wait([*(worker.conn for worker in self.workers), *sentinels], timeout=TICK_SECONDS)
        for worker in [w for w in self.workers if w.conn in ready or w.process.sentinel in ready]:
            reports += self._drain(worker)
        self._footer()
        self.board.refresh()
        return reports

    def _footer(self) -> None:
        if self.progress is not None:
            running, left = len([w for w in self.workers if w.job]), len(self.progress.pending)
            self.board.footer = f"study: {running} running, {max(left - running, 0)} waiting; {self.progress.eta()}"

    def _drain(self, worker: _Worker) -> list[JobReport]:
        reports = []
        try:
            while worker.conn.poll():
                report = self._handle(worker, worker.conn.recv())
                if report is not None:
                    reports.append(report)
        except (EOFError, OSError):  # the worker is gone
            worker.process.join()
            self.workers.remove(worker)
            if worker.job is not None:
                message = f"its process ended with exit code {worker.process.exitcode}"
                report = JobReport(worker.job.name, JobState.FAILED, message, 1)
                self._finish(worker.job, report, time.monotonic() - worker.since)
                reports.append(report)
        return reports

    def _handle(self, worker: _Worker, message: WorkerMessage) -> JobReport | None:
        """Act on one message of `worker`; the report when its run ended."""
        job = worker.job
        name = job.name if job else f"job {worker.slot + 1}"
        match message:
            case Ready():
                worker.ready, worker.startup = True, time.monotonic() - worker.spawned
            case Line(text):
                self.board.line(name, text)
            case Batch(epoch, epochs, done, total, testing):
                self.board.batch(name, epoch, epochs, done, total, testing)
            case Started(train_images, epochs_done) if self.progress is not None and job is not None:
                self.progress.started(job.number - 1, train_images, epochs_done)
            case EpochDone(epochs_done, seconds, epochs, metrics):
                self.board.epoch_done(name, seconds)
                eta = ""
                if self.progress is not None and job is not None:
                    eta = self.progress.epoch_done(job.number - 1, epochs_done, seconds)
                self.board.epoch_line(name, epochs_done, epochs, seconds, metrics, eta)
            case JobReport() if job is not None:
                return self._ended(worker, job, message)
        return None

    def _ended(self, worker: _Worker, job: Job, report: JobReport) -> JobReport:
        """The run of `worker` ended: its report, with the worker's start-up time on its first."""
        if worker.startup is not None:
            report = replace(report, timings={"start-up": worker.startup, **report.timings})
            worker.startup = None
        worker.job = None
        self._finish(job, report, time.monotonic() - worker.since)
        return report

    def _finish(self, job: Job, report: JobReport, seconds: float) -> None:
        """Say how a run ended, in one line (and its timings with --verbose)."""
        result = job.finished() if report.state is JobState.DONE else None
        lines = {
            JobState.DONE: f"{result_line(result)}; finished in {format_duration(seconds)}" if result else "finished",
            JobState.SKIPPED: "already complete, skipped (use --fresh to run it again)",
            JobState.LOCKED: report.message.removeprefix(f"{report.name} "),
            JobState.FAILED: f"FAILED: {worded(report.message, caller())}",  # a worker words it for the command
            JobState.INTERRUPTED: INTERRUPTED,
        }
        self.board.stop(job.name)
        self.board.line(job.name, lines[report.state])
        if self.verbose and report.timings:
            self.board.line(job.name, f"timings: {describe_timings(report.timings)}")
        if self.progress is not None:
            self.progress.settle(job.number - 1, trained=report.state is JobState.DONE)

    def _stop(self) -> None:
        """Ask each worker to stop at its next safe point (one SIGINT), wait for it, then terminate stragglers."""
        running = [worker for worker in self.workers if worker.job]
        self.board.line(None, f"\nstopping {len(running)} running job(s) at their next safe point...")
        for worker in self.workers:
            if worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGINT)
            if worker.job is None:  # one still starting up may not take SIGINT yet: it reads Stop once ready
                with contextlib.suppress(OSError):
                    worker.conn.send(Stop())
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        try:
            while self.workers and time.monotonic() < deadline:
                self._poll()
        finally:
            for worker in self.workers:
                worker.process.terminate()
                worker.process.join()
            self.workers.clear()
            self.board.close()
