"""Peak memory of one MNIST run against the size of the data as float32 plus the model.

Runs `cnnkit run mnist pooling_cnn --epochs 1` (the full 60,000 + 10,000 images unless --subset) in a subprocess
with the real CLI, and reads the child's peak resident set size (ru_maxrss) once it has exited. A second subprocess
that only imports what a run imports (torch, Lightning, torchmetrics, cnnkit and its plugins) gives the baseline
that any run pays before it touches data; the difference is what the run itself holds.

    python benchmarks/memory.py                  # MNIST, 1 epoch, full set, CPU
    python benchmarks/memory.py --subset 6000    # quicker (the whole npz is still read)

Reference size: 70,000 x 784 float32 values (219.5 MB = 209.4 MiB) + the model's parameters as float32.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path("/work/shared/data")
MiB = 1024 * 1024
IMPORTS = (
    "import torch, lightning, torchmetrics, numpy\n"
    "import cnnkit.cli, cnnkit.training.runner, cnnkit.training.callbacks, cnnkit.nets.summary\n"
    "from cnnkit.plugins import get_registries\n"
    "r = get_registries(); r.datasets.get('mnist'); r.architectures.get('pooling_cnn')\n"
)


def peak_rss_of(command: list[str], env: dict[str, str]) -> tuple[int, float, subprocess.CompletedProcess]:
    """Peak RSS (bytes) of `command`, run as this process's only child, and its wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux; max over waited-for children
    if peak <= before:
        raise SystemExit("could not attribute the peak RSS to the run (a larger child ran first)")
    return peak * 1024, seconds, proc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subset", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="default: $CNNKIT_DATA_DIR, else /work/shared/data")
    p.add_argument("--limit", type=float, default=2.5, help="largest acceptable ratio (default 2.5)")
    args = p.parse_args(argv)
    data_dir = args.data_dir or os.environ.get("CNNKIT_DATA_DIR") or (SHARED_DATA if SHARED_DATA.is_dir() else None)
    if not data_dir or not (Path(data_dir) / "mnist.npz").exists():
        raise SystemExit("needs mnist.npz: pass --data-dir or set $CNNKIT_DATA_DIR")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

    # The run first: RUSAGE_CHILDREN keeps the maximum over children, so the smaller baseline must come after it.
    with tempfile.TemporaryDirectory(prefix="cnnkit-memory-") as out:
        run = [sys.executable, "-m", "cnnkit.cli", "run", "mnist", "pooling_cnn", "--epochs", str(args.epochs)]
        run += ["--accelerator", "cpu", "--quiet", "--out", out, "--data-dir", str(data_dir)]
        if args.subset:
            run += ["--subset", str(args.subset)]
        peak, seconds, proc = peak_rss_of(run, env)
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            raise SystemExit(f"the run failed (exit {proc.returncode})")
        result = json.loads(next(Path(out).glob("single/*/result.json")).read_text())
    pid_rss = subprocess.run(
        [sys.executable, "-c", IMPORTS + "print(open('/proc/self/status').read())"],
        capture_output=True,
        text=True,
        env=env,
    )
    baseline = next(int(line.split()[1]) * 1024 for line in pid_rss.stdout.splitlines() if line.startswith("VmHWM:"))

    params = int(result["params"])
    reference = 70_000 * 28 * 28 * 4 + params * 4
    own = peak - baseline
    print(f"run: {' '.join(run[1:])}  ({seconds:.0f} s, test accuracy {result['test_accuracy']:.4f})")
    print(f"reference: MNIST as float32 {70_000 * 784 * 4 / MiB:.1f} MiB + model {params * 4 / MiB:.1f} MiB")
    print(f"  = {reference / MiB:.1f} MiB  (cnnkit holds the images as uint8: {70_000 * 784 / MiB:.1f} MiB)")
    print(f"baseline (python + torch + lightning + cnnkit imported, no data): {baseline / MiB:.0f} MiB")
    print(f"peak RSS of the run: {peak / MiB:.0f} MiB -> {peak / reference:.2f}x the reference")
    print(f"peak RSS above the import baseline: {own / MiB:.0f} MiB -> {own / reference:.2f}x the reference")
    verdict = "OK" if own / reference <= args.limit else "OVER"
    print(f"memory ratio (run's own peak / reference): {own / reference:.2f} (limit {args.limit}) {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
