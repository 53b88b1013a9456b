"""How soon a study says something: seconds from starting `cnnkit run --study ...` to its first line on the terminal.

The command prints one line (the study, its runs and where they go) before it loads PyTorch and Lightning, which
take seconds; this measures that line, and, for comparison, the first run's header that follows the imports.
Each round starts the command afresh in a new OUT directory and stops it (SIGINT) once the header is there, so
nothing trains; the figures are the median and range over --repeat rounds (default 5), per --jobs value.

    python benchmarks/first_line.py                     # a synthetic one-run study, --jobs 1 and 2
    python benchmarks/first_line.py --study assignment  # needs the datasets ($CNNKIT_DATA_DIR)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDY = (
    'name = "first-line"\n[defaults]\ndataset = "mnist"\nepochs = 1\nsubset = 600\n[[runs]]\narchitecture = "net_2"\n'
)


def one_round(study: str, jobs: str, work: Path, data_dir: str | None) -> tuple[float, float]:
    """(seconds to the first line, seconds to the first run's header) of one fresh command."""
    command = [sys.executable, "-m", "cnnkit.cli", "run", "--study", study, "--jobs", jobs, "--out", str(work)]
    command += ["--data-dir", data_dir] if data_dir else []
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    first = header = None
    assert process.stderr is not None
    for line in process.stderr:
        now = time.perf_counter() - started
        first = now if first is None else first
        if line.startswith("[1/"):
            header = now
            break
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    if first is None or header is None:
        raise SystemExit(f"the command ended without a run header (exit code {process.returncode})")
    return first, header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", help="a study name or TOML file (default: a synthetic one-run MNIST study)")
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values (default 1,2)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        study, data_dir = args.study, os.environ.get("CNNKIT_DATA_DIR")
        if study is None:
            sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
            from helpers import write_mnist_npz

            write_mnist_npz(root)
            (root / "first-line.toml").write_text(STUDY)
            study, data_dir = str(root / "first-line.toml"), str(root)
        print(f"{'--jobs':>6}  {'first line (s)':>22}  {'first run header (s)':>22}")
        for jobs in args.jobs.split(","):
            rounds = [one_round(study, jobs, root / f"runs-{jobs}-{k}", data_dir) for k in range(args.repeat)]
            cells = []
            for figures in zip(*rounds, strict=True):
                cells.append(f"{statistics.median(figures):6.2f} ({min(figures):.2f}-{max(figures):.2f})")
            print(f"{jobs:>6}  {cells[0]:>22}  {cells[1]:>22}")


if __name__ == "__main__":
    main()
