"""Side by side in one run: the wall time of `cnnkit run --study ... --jobs N` for each N and --subset, and the
per-run overhead beyond training and testing, for a worker's first run and for its later ones.

For each --subset (default 4000,12000) and each N in --jobs (default 1,2) the study runs from scratch in a fresh OUT
directory (`--verbose`, HTML report only), timed from the command's start to its exit. `--verbose` makes cnnkit
print each run's timings (`timings: start-up 9.8s, overhead 0.3s, training 20.0s, testing 3.0s`): `start-up` is a
worker's own (imports, before its first run came), `overhead` everything in the run but training (with
validation) and testing: reading the data, building the net and the Trainer, writing results. A worker's first run
pays start-up and the first read of the data; its later runs only the rest (with --jobs 1 the runs train in the
command's own process, whose start-up is not split out). One table row per (subset, N), then the
ratio of the wall times of `--jobs 1` to each N. With `--repeat R` the job counts run in turn R times (1, 2, 1,
2, ...) and the table gives the median wall time and the median of the per-round ratios, with their range: on a
shared machine whose speed drifts, a ratio within a round is what holds. `--plain` adds a bare PyTorch loop doing
the same work in N processes of (cores // N) threads: what the hardware gives without any framework.

    CNNKIT_DATA_DIR=/path/to/data python benchmarks/jobs.py --repeat 3             # 4 runs x 1 epoch, 2 subsets
    python benchmarks/jobs.py --subsets 1000 --jobs 1,2                           # a quick end-to-end check
    python benchmarks/jobs.py --accelerator gpu --jobs 1,2,4,8 --subsets 12000    # several jobs on one GPU
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BATCH_SIZE = 128
TIMINGS = re.compile(r"timings: (.*)$")
TARGETS = {4000: 1.05, 12000: 1.1}  # issue 20: the least speed-up of --jobs 2 over --jobs 1 wanted at these subsets
LATER_OVERHEAD_TARGET = 1.0  # seconds, after a worker's first run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default=str(REPO / "examples/studies/assignment-mnist.toml"))
    p.add_argument("--subsets", default="4000,12000", help="comma-separated --subset values (default 4000,12000)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    p.add_argument("--jobs", default="1,2", help="comma-separated job counts to time (default 1,2)")
    p.add_argument("--accelerator", default="auto", help="passed to cnnkit (default auto)")
    p.add_argument("--data-dir", default=os.environ.get("CNNKIT_DATA_DIR"))
    p.add_argument(
        "--repeat", type=int, default=1, help="rounds of the job counts in turn (1, 2, 1, 2, ...); ratios per round"
    )
    p.add_argument("--plain", action="store_true", help="also time a plain PyTorch loop doing the same work")
    p.add_argument("--plain-worker", nargs="+", help=argparse.SUPPRESS)  # internal: THREADS RUN_INDEX...
    return p.parse_args(argv)


@dataclass
class Timed:
    """One study run: its wall time and each run's timings, in the order cnnkit printed them."""

    seconds: float
    runs: list[dict[str, float]] = field(default_factory=list)

    @property
    def first(self) -> list[dict[str, float]]:
        """The first run of each worker (with --jobs 1: the first run of the command)."""
        started = [run for run in self.runs if "start-up" in run]
        return started or self.runs[:1]

    @property
    def later(self) -> list[dict[str, float]]:
        return [run for run in self.runs if all(run is not first for first in self.first)]


def parse_timings(text: str) -> dict[str, float]:
    """`start-up 9.8s, overhead 0.3s, ...` -> {"start-up": 9.8, "overhead": 0.3, ...}."""
    return {name: float(value.rstrip("s")) for name, value in (part.rsplit(" ", 1) for part in text.split(", "))}


def time_cnnkit(args: argparse.Namespace, subset: int, jobs: int, out: Path) -> Timed:
    command = [sys.executable, "-m", "cnnkit.cli", "run", "--study", args.study, "--subset", str(subset)]
    command += ["--epochs", str(args.epochs), "--jobs", str(jobs), "--verbose", "--report-format", "html"]
    command += ["--accelerator", args.accelerator, "--out", str(out)]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"cnnkit --jobs {jobs} failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    found = (TIMINGS.search(line) for line in done.stderr.splitlines())
    return Timed(seconds, [parse_timings(match[1]) for match in found if match])


def overhead(runs: list[dict[str, float]]) -> str:
    """`0.31 s (max 0.40)` of the runs' overhead beyond training and testing (start-up included)."""
    values = [run.get("start-up", 0.0) + run["overhead"] for run in runs]
    if not values:
        return "-"
    return f"{statistics.mean(values):.2f} s (max {max(values):.2f})"


def time_plain(args: argparse.Namespace, subset: int, jobs: int, runs: int) -> float:
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    started = time.perf_counter()
    worker = [sys.executable, __file__, *sys_args(args, subset), "--plain-worker", str(threads)]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    workers = [
        subprocess.Popen([*worker, *(str(i) for i in range(k, runs, jobs))], env=environment)
        for k in range(min(jobs, runs))
    ]
    if any(worker.wait() != 0 for worker in workers):
        sys.exit("a plain-loop worker failed")
    return time.perf_counter() - started


def sys_args(args: argparse.Namespace, subset: int) -> list[str]:
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    return ["--study", args.study, "--subsets", str(subset), "--epochs", str(args.epochs), *data]


def plain_worker(args: argparse.Namespace) -> None:
    """Train the given runs of the study with a bare PyTorch loop (one thread count for all)."""
    import torch
    import torch.nn.functional as F

    from cnnkit.plugins import get_registries
    from cnnkit.studies.study import load_study_file

    threads, *indices = map(int, args.plain_worker)
    torch.set_num_threads(threads)
    registries = get_registries()
    planned = load_study_file(args.study).expand(args.epochs, int(args.subsets))
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

    counts = [int(n) for n in args.jobs.split(",")]
    subsets = [int(n) for n in args.subsets.split(",")]
    print(
        f"study {args.study}, {args.epochs} epoch(s) a run; {len(os.sched_getaffinity(0))} cores; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    width = 6 if args.repeat <= 1 else 18  # the ratio, with its range over the rounds
    header = (
        f"{'subset':>7} {'jobs':>4} {'runs':>4} {'wall':>8} {'1:N':>{width}}  {'first run of a worker: overhead':<42} "
    )
    print(header + "later runs: overhead  (beyond training and testing; start-up included)")
    ratios: dict[tuple[int, int], float] = {}
    later_worst = 0.0
    for subset in subsets:
        runs = len(load_study_file(args.study).expand(args.epochs, subset))
        rounds: list[dict[int, Timed]] = []
        for _ in range(max(1, args.repeat)):  # in turn, so that a drift in the machine's speed hits both alike
            timed: dict[int, Timed] = {}
            for jobs in counts:
                with tempfile.TemporaryDirectory(prefix="cnnkit-jobs-") as out:
                    timed[jobs] = time_cnnkit(args, subset, jobs, Path(out))
            rounds.append(timed)
        for jobs in counts:
            per_round = [timed[counts[0]].seconds / timed[jobs].seconds for timed in rounds]
            ratio = ratios[subset, jobs] = statistics.median(per_round)
            firsts = [run for timed in rounds for run in timed[jobs].first]
            laters = [run for timed in rounds for run in timed[jobs].later]
            later_worst = max([later_worst, *(run["overhead"] for run in laters)])
            first = overhead(firsts)
            start_up = [run["start-up"] for run in firsts if "start-up" in run]
            first += f", start-up {statistics.mean(start_up):.1f} s" if start_up else ""
            wall = statistics.median(timed[jobs].seconds for timed in rounds)
            spread = f" ({min(per_round):.2f}-{max(per_round):.2f})" if len(rounds) > 1 else ""
            print(
                f"{subset:>7} {jobs:>4} {runs:>4} {wall:>6.1f} s {f'{ratio:.2f}x{spread}':>{width}}  {first:<42} "
                f"{overhead(laters)}",
                flush=True,
            )
        for jobs in counts if args.plain else []:
            plain = time_plain(args, subset, jobs, runs)
            cnnkit_wall = statistics.median(timed[jobs].seconds for timed in rounds)
            print(f"{subset:>7} {jobs:>4} plain loop {plain:.1f} s: cnnkit/plain {cnnkit_wall / plain:.2f}")
    for (subset, jobs), ratio in ratios.items():
        if jobs == 2 and counts[0] == 1 and subset in TARGETS:
            verdict = "met" if ratio >= TARGETS[subset] else "NOT met"
            print(f"--jobs 1 : --jobs 2 at --subset {subset}: {ratio:.2f}x (wanted {TARGETS[subset]:.2f}x: {verdict})")
    verdict = "met" if later_worst <= LATER_OVERHEAD_TARGET else "NOT met"
    print(f"later runs' overhead at most {later_worst:.2f} s (wanted {LATER_OVERHEAD_TARGET:.0f} s: {verdict})")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
