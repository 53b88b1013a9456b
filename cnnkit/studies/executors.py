"""Running a study's runs: one at a time in this process, side by side in job processes, or as Ray tasks.

However they run, each run takes its directory's lock; runs that other processes (or machines) hold are skipped
and waited for at the end, and taken over when their holder died before finishing them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from cnnkit.console.eta import format_duration
from cnnkit.console.progress import RunProgress, plural, run_label, test_line
from cnnkit.console.study_progress import StudyProgress
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.storage.damage import finished_result
from cnnkit.storage.locks import RunLocked, command_pid, lock_holder

JOB_MEMORY_BYTES = 2 << 30  # peak RSS of one CIFAR-10 job process with torch + lightning, rounded up
JOBS_PER_GPU = 4  # small runs leave a GPU mostly idle; benchmarks/gpu_check.sh times the choice
WAIT_POLL_SECONDS = 2.0
STOP_GRACE_SECONDS = 120.0
EXECUTORS = ("local", "ray")


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

    @property
    def name(self) -> str:
        return str(self.config.dir_name)

    @property
    def run_dir(self) -> Path:
        return self.out / self.study / self.name


@dataclass(frozen=True)
class JobReport:
    """How a run ended: done, skipped (complete already), locked (another process has it), failed, interrupted."""

    name: str
    state: str
    message: str = ""
    exit_code: int = 0


class JobFailed(CnnkitError):
    """A run in a job process or Ray task failed; its one line is the message."""

    def __init__(self, report: JobReport) -> None:
        super().__init__(f"{report.name}: {report.message}")
        self.exit_code = report.exit_code or 1


# ------------------------------------------------------------------------------------------ one run, any process
def train_job(job: Job) -> JobReport:
    """Train one run in this process and say how it ended (no exception for a failure a user can act on)."""
    from cnnkit.failures import known_failure

    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    try:
        outcome = execute_job(job)
    except RunLocked as exc:
        return JobReport(job.name, "locked", str(exc))
    except CnnkitError as exc:
        return JobReport(job.name, "failed", str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return JobReport(job.name, "interrupted", "interrupted; its checkpoints are kept", 130)
    except Exception as exc:
        known = known_failure(exc)
        if known is None:
            raise
        return JobReport(job.name, "failed", known, 1)
    return JobReport(job.name, "skipped" if outcome.skipped else "done")


def _stop_when_orphaned(parent: int) -> None:
    """A job whose cnnkit command was killed outright (SIGKILL, OOM) stops at its next batch, checkpoints kept,
    instead of training on unseen; the next command resumes it."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _child_main(job: Job, report_to: Connection) -> None:
    """Entry point of a job process (spawned: no half-initialised torch is inherited)."""
    os.setpgid(0, 0)  # Ctrl-C reaches the parent only; it forwards one SIGINT to each job
    _stop_when_orphaned(os.getppid())
    os.environ["CNNKIT_COMMAND_PID"] = str(job.command_pid or os.getppid())
    if job.threads:
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(job.threads)
    if job.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = job.gpu
    from cnnkit.console.streams import PrefixedStream

    sys.stdout = PrefixedStream(sys.__stdout__, job.name)
    sys.stderr = PrefixedStream(sys.__stderr__, job.name)
    try:
        report = train_job(job)
    except KeyboardInterrupt:  # before the run's own handler was installed
        report = JobReport(job.name, "interrupted", "interrupted; its checkpoints are kept", 130)
    except Exception as exc:
        report = JobReport(job.name, "failed", f"internal error: {type(exc).__name__}: {exc}", 1)
    if report.state in ("failed", "interrupted"):
        print(f"cnnkit: {report.message}", file=sys.stderr)
    with contextlib.suppress(OSError):  # OSError: the cnnkit command is gone (killed), nobody to tell
        report_to.send(report)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(report.exit_code)


# ------------------------------------------------------------------------------------------ where jobs may run
def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def visible_gpus(options: Any) -> list[str]:
    """CUDA devices the jobs may use, as CUDA_VISIBLE_DEVICES entries (none when training on CPU)."""
    if options.accelerator == "cpu":
        return []
    import torch

    count = torch.cuda.device_count()
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return (listed or [str(i) for i in range(count)])[:count]


def auto_jobs(runs: int, gpus: int) -> int:
    """`--jobs auto`: on CPU one single-threaded job per core (measured faster than fewer, wider jobs); on GPUs
    JOBS_PER_GPU per device, at most one per core; never more jobs than runs or than memory holds."""
    wanted = min(usable_cores(), JOBS_PER_GPU * gpus) if gpus else usable_cores()
    memory = available_memory()
    by_memory = max(1, memory // JOB_MEMORY_BYTES) if memory else wanted
    return max(1, min(wanted, runs, by_memory))


def parse_jobs(text: str) -> int | None:
    """The value of --jobs: an integer of at least 1, or None for 'auto'."""
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--jobs must be an integer of at least 1 or 'auto', got '{text}'")
    return int(text)


def resolve_jobs(jobs: int | str | None, executor: str = "local") -> int | None:
    """--jobs as given (N, 'auto' or unset) as `execute_planned` takes it: N, or None for auto.

    Unset means one at a time locally, and auto with Ray."""
    if jobs is None:
        return None if executor == "ray" else 1
    if isinstance(jobs, bool) or not isinstance(jobs, (int, str)):
        raise UsageError(f"--jobs must be an integer of at least 1 or 'auto', got {jobs!r}")
    return parse_jobs(str(jobs))


def check_executor(executor: str, ray_address: str | None = None) -> None:
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor '{executor}' (choose from: {', '.join(EXECUTORS)})")
    if ray_address and executor != "ray":
        raise UsageError("--ray-address needs --executor ray")


def check_parallel_options(options: Any) -> None:
    """Side-by-side runs each train on one device: refuse multi-device settings with them."""
    if options.strategy != "auto" or options.num_nodes != 1 or str(options.devices) not in ("auto", "1"):
        raise UsageError(
            "--jobs above 1 and --executor ray train each run on one device: drop --strategy, "
            "--devices and --num-nodes (or use --jobs 1)"
        )


# ------------------------------------------------------------------------------------------ backends
Backend = Callable[[list[Job]], list[JobReport]]


def run_serial(jobs: list[Job], progress: StudyProgress | None = None) -> list[JobReport]:
    """One run after another in this process, with its header, epoch lines and the study's ETA; errors propagate."""
    reports = []
    for job in jobs:
        run_progress = progress.run(job.number - 1) if progress else None
        try:
            outcome = execute_job(job, run_progress)
        except RunLocked as exc:
            print(f"    {exc}", file=sys.stderr, flush=True)
            reports.append(JobReport(job.name, "locked", str(exc)))
            continue
        if progress:
            progress.finished(job.number - 1, outcome)
        reports.append(JobReport(job.name, "skipped" if outcome.skipped else "done"))
    return reports


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
        job.config, job.options, job.out, job.study, job.fresh, before_write=write_manifest, progress=progress
    )


def run_local(jobs: list[Job], parallel: int, total: int) -> list[JobReport]:
    """Up to `parallel` runs at once, each in its own spawned process; a failure stops new launches."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    gpus = visible_gpus(jobs[0].options) if jobs else []
    threads = max(1, usable_cores() // parallel)
    waiting = list(jobs)
    running: dict[int, tuple[Any, Connection, Job, int, float]] = {}  # sentinel -> process, pipe, job, slot, start
    reports: dict[str, JobReport] = {}
    stopping = False
    try:
        while waiting or running:
            while waiting and len(running) < parallel and not stopping:
                job = waiting.pop(0)
                slot = min(set(range(parallel)) - {entry[3] for entry in running.values()})
                job = replace(job, threads=threads, gpu=gpus[slot % len(gpus)] if gpus else None)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_child_main, args=(job, send), name=job.name)
                process.start()
                send.close()
                running[process.sentinel] = (process, receive, job, slot, time.monotonic())
                where = f"GPU {job.gpu}" if job.gpu is not None else f"{threads} thread{'s' * (threads > 1)}"
                print(
                    f"[{job.number}/{total}] {run_label(job.config)} — {plural(job.config.epochs, 'epoch')}, "
                    f"started: job {slot + 1}, {where}",
                    file=sys.stderr,
                    flush=True,
                )
            for sentinel in wait(list(running)):
                process, receive, job, _, started = running.pop(sentinel)  # type: ignore[index]
                process.join()
                report = (
                    receive.recv()
                    if receive.poll()
                    else JobReport(job.name, "failed", f"its process ended with exit code {process.exitcode}", 1)
                )
                receive.close()
                reports[job.name] = report
                _announce(report, time.monotonic() - started, job.run_dir)
                stopping = stopping or report.state in ("failed", "interrupted")
    except KeyboardInterrupt:
        _stop_children([entry[0] for entry in running.values()])
        raise
    return list(reports.values())


def _announce(report: JobReport, seconds: float, run_dir: Path) -> None:
    result = finished_result(run_dir, quiet=True) if report.state == "done" else None
    lines = {
        "done": f"{test_line(result)}; finished in {format_duration(seconds)}" if result else "finished",
        "skipped": "already complete, skipped (use --fresh to run it again)",
        "locked": report.message.removeprefix(f"{report.name} "),
        "failed": f"FAILED: {report.message}",
        "interrupted": "interrupted; its checkpoints are kept",
    }
    print(f"[{report.name}] {lines[report.state]}", file=sys.stderr, flush=True)


def _stop_children(processes: list[Any]) -> None:
    """Ask each job to stop at its next safe point (one SIGINT), wait for it, then terminate stragglers."""
    print(f"\nstopping {len(processes)} running job(s) at their next safe point...", file=sys.stderr, flush=True)
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join()


# ------------------------------------------------------------------------------------------ a whole study
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
) -> list[Any]:
    """Train every planned RunConfig (skipping finished ones); the RunOutcomes once none is left to any process.

    `progress` (one at a time in this process only) prints each run's header with the study's ETA."""
    from cnnkit.training.runner import RunOutcome

    out = Path(out).absolute()  # job processes and Ray workers may start elsewhere
    if executor == "ray" or jobs != 1:
        check_parallel_options(options)
    gpus = len(visible_gpus(options)) if jobs is None and executor == "local" else 0
    parallel = jobs or auto_jobs(len(planned), gpus)
    if jobs is None and executor == "local":
        print(
            f"--jobs auto: {parallel} at once ({usable_cores()} cores{f', {gpus} GPUs' if gpus else ''})",
            file=sys.stderr,
            flush=True,
        )
    todo = [
        Job(
            config,
            options,  # in a job process its epoch lines print plainly: the stream is no terminal
            number,
            out,
            study,
            fresh,
            manifest,
            command_pid=command_pid(),
        )
        for number, config in enumerate(planned, start=1)
    ]
    backend = _backend(executor, jobs, parallel, ray_address, len(planned), progress)
    reports: dict[str, JobReport] = {}
    while todo:
        for report in backend(todo):
            reports[report.name] = report
            if report.state == "interrupted":
                raise KeyboardInterrupt
            if report.state == "failed":
                raise JobFailed(report)
        held = [job for job in todo if reports[job.name].state == "locked"]
        todo = [replace(job, fresh=False) for job in wait_for_others(held)]
    outcomes = []
    for config in planned:
        run_dir = out / study / config.dir_name
        trained_here = reports[config.dir_name].state == "done"
        outcomes.append(RunOutcome(run_dir, finished_result(run_dir, quiet=True) or {}, skipped=not trained_here))
    return outcomes


def _backend(
    executor: str, asked: int | None, parallel: int, ray_address: str | None, total: int, progress: Any
) -> Backend:
    if executor == "ray":
        from cnnkit.studies.ray_executor import run_ray

        return lambda jobs: run_ray(jobs, asked, ray_address)
    if parallel == 1:
        return lambda jobs: run_serial(jobs, progress)
    return lambda jobs: run_local(jobs, parallel, total)


def wait_for_others(held: list[Job]) -> list[Job]:
    """Wait until no other process holds these runs; the ones their holders left unfinished (to train now)."""
    if not held:
        return []
    print(
        f"waiting for {len(held)} run(s) that other processes are training: {', '.join(job.name for job in held)}",
        file=sys.stderr,
        flush=True,
    )
    remaining, unfinished = list(held), []
    while remaining:
        for job in list(remaining):
            if lock_holder(job.run_dir) is None:
                remaining.remove(job)
                if finished_result(job.run_dir, quiet=True) is None:
                    print(f"[{job.name}] its trainer stopped before the end; training it here", file=sys.stderr)
                    unfinished.append(job)
        if remaining:
            time.sleep(WAIT_POLL_SECONDS)
    if not unfinished and held:
        print("the other processes finished their runs", file=sys.stderr, flush=True)
    return unfinished
