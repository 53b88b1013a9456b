"""Where side-by-side jobs may run: cores, memory and GPUs, and how many jobs `--jobs auto` chooses."""

from __future__ import annotations

import os
from typing import Any

from cnnkit.errors import UsageError

JOB_MEMORY_BYTES = 2 << 30  # peak RSS of one CIFAR-10 job process with torch + lightning, rounded up
JOBS_PER_GPU = 4  # small runs leave a GPU mostly idle; benchmarks/gpu_check.sh times the choice
EXECUTORS = ("local", "ray")


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
    """--jobs as given (N, 'auto' or unset) as `execute_planned` takes it: N, or None for auto (also when unset:
    studies run side by side unless told otherwise)."""
    if jobs is None:
        return None
    if isinstance(jobs, bool) or not isinstance(jobs, (int, str)):
        raise UsageError(f"--jobs must be an integer of at least 1 or 'auto', got {jobs!r}")
    return parse_jobs(str(jobs))


def may_run_side_by_side(jobs: str | None) -> bool:
    """Whether --jobs as typed (before anything is checked or imported) can start job workers: N above 1, or
    auto (also when unset) with more than one core."""
    try:
        count = parse_jobs(jobs or "auto")
    except UsageError:  # refused later, with its message
        return False
    return usable_cores() > 1 if count is None else count > 1


def check_executor(executor: str, ray_address: str | None = None) -> None:
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor '{executor}' (choose from: {', '.join(EXECUTORS)})")
    if ray_address and executor != "ray":
        raise UsageError("--ray-address needs --executor ray")


def one_device_each(options: Any) -> bool:
    """Whether the options train each run on one device (what side-by-side jobs need)."""
    return options.strategy == "auto" and options.num_nodes == 1 and str(options.devices) in ("auto", "1")


def check_parallel_options(options: Any) -> None:
    """Side-by-side runs each train on one device: refuse multi-device settings with them."""
    if not one_device_each(options):
        raise UsageError(
            "--jobs above 1 and --executor ray train each run on one device: drop --strategy, "
            "--devices and --num-nodes (or use --jobs 1)"
        )
