"""Wall time of a whole study with `cnnkit run --study ... --jobs N`, against a plain PyTorch loop doing the same work.

For each N in `--jobs` (default 1,2), the study runs from scratch in a fresh OUT directory (`--quiet`, HTML
report only), timed from the command's start to its exit (start-up, data loading, evaluation and report included).
The plain reference trains the same runs (same networks, optimizers, preset, batch 128, the study's split) with a
bare loop - forward, cross-entropy, backward, step; validation and test evaluated once per epoch and at the end -
in N processes of (cores // N) threads each, dealing the runs round-robin: what the hardware gives without any
framework. Lines `jobs N: cnnkit X s`, `speed-up of --jobs N over --jobs 1`, then `jobs N: plain Y s, ... R`.

    python benchmarks/jobs.py --study examples/studies/assignment-mnist.toml --subset 6000 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BATCH_SIZE = 128


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default=str(REPO / "examples/studies/assignment-mnist.toml"))
    p.add_argument("--subset", type=int, default=6000, help="training images per run (default 6000)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    p.add_argument("--jobs", default="1,2", help="comma-separated job counts to time (default 1,2)")
    p.add_argument("--data-dir", default=os.environ.get("CNNKIT_DATA_DIR"))
    p.add_argument("--no-plain", action="store_true", help="skip the plain-loop reference")
    p.add_argument("--plain-worker", nargs="+", help=argparse.SUPPRESS)  # internal: THREADS RUN_INDEX...
    return p.parse_args(argv)


def time_cnnkit(args: argparse.Namespace, jobs: int, out: Path) -> float:
    command = [sys.executable, "-m", "cnnkit.cli", "run", "--study", args.study, "--subset", str(args.subset)]
    command += ["--epochs", str(args.epochs), "--jobs", str(jobs), "--quiet", "--report-format", "html"]
    command += ["--out", str(out)] + (["--data-dir", args.data_dir] if args.data_dir else [])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"cnnkit --jobs {jobs} failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def time_plain(args: argparse.Namespace, jobs: int, runs: int) -> float:
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    started = time.perf_counter()
    worker = [sys.executable, __file__, *sys_args(args), "--plain-worker", str(threads)]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    workers = [
        subprocess.Popen([*worker, *(str(i) for i in range(k, runs, jobs))], env=environment)
        for k in range(min(jobs, runs))
    ]
    if any(worker.wait() != 0 for worker in workers):
        sys.exit("a plain-loop worker failed")
    return time.perf_counter() - started


def sys_args(args: argparse.Namespace) -> list[str]:
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    return ["--study", args.study, "--subset", str(args.subset), "--epochs", str(args.epochs), *data]


def plain_worker(args: argparse.Namespace) -> None:
    """Train the given runs of the study with a bare PyTorch loop (one thread count for all)."""
    import torch
    import torch.nn.functional as F

    from cnnkit.plugins import get_registries
    from cnnkit.studies.study import load_study_file

    threads, *indices = map(int, args.plain_worker)
    torch.set_num_threads(threads)
    registries = get_registries()
    planned = load_study_file(args.study).expand(args.epochs, args.subset)
    for index in indices:
        config, _ = planned[index]
        torch.manual_seed(config.seed)
        datamodule = registries.datasets.get(config.dataset)(
            data_dir=args.data_dir, batch_size=BATCH_SIZE, val_split=config.val_split, subset=config.subset, seed=0
        )
        datamodule.load_arrays()
        datamodule.setup("fit")
        model = registries.architectures.get(config.architecture)(
            datamodule.input_shape(),
            datamodule.num_classes(),
            registries.optimizers.get(config.optimizer),
            config.preset,
            config.lr,
        )
        network, optimizer = model.network, model.configure_optimizers()
        images, labels = datamodule.split("train")
        for _ in range(config.epochs):
            order = torch.randperm(len(labels))
            for start in range(0, len(labels), config.batch_size):
                batch = order[start : start + config.batch_size]
                loss = F.cross_entropy(network(images[batch].float() / 255), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            evaluate(network, *datamodule.split("val"))
        evaluate(network, *datamodule.split("test"))


def evaluate(network: Any, images: Any, labels: Any) -> None:
    """The loss over a split in batches of 256, as cnnkit's validation and test passes."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        for start in range(0, len(labels), 256):
            F.cross_entropy(network(images[start : start + 256].float() / 255), labels[start : start + 256])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plain_worker:
        plain_worker(args)
        return 0
    sys.path.insert(0, str(REPO))
    from cnnkit.studies.study import load_study_file

    runs = len(load_study_file(args.study).expand(args.epochs, args.subset))
    counts = [int(n) for n in args.jobs.split(",")]
    print(
        f"study {args.study}: {runs} runs, {args.epochs} epochs, --subset {args.subset}; "
        f"{len(os.sched_getaffinity(0))} cores; load average {os.getloadavg()[0]:.1f}"
    )
    cnnkit_seconds: dict[int, float] = {}
    for jobs in counts:  # cnnkit first: the speed-up of --jobs is the figure wanted most
        with tempfile.TemporaryDirectory(prefix="cnnkit-jobs-") as out:
            cnnkit_seconds[jobs] = time_cnnkit(args, jobs, Path(out))
        print(f"jobs {jobs}: cnnkit {cnnkit_seconds[jobs]:.1f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    for jobs in counts:
        if jobs != counts[0]:
            print(
                f"speed-up of --jobs {jobs} over --jobs {counts[0]}: "
                f"{cnnkit_seconds[counts[0]] / cnnkit_seconds[jobs]:.2f}x",
                flush=True,
            )
    for jobs in [] if args.no_plain else counts:
        plain = time_plain(args, jobs, runs)
        print(
            f"jobs {jobs}: plain {plain:.1f} s, cnnkit/plain wall-time ratio {cnnkit_seconds[jobs] / plain:.2f} "
            f"(load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
