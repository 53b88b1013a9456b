"""Shared test helpers: where the real data is, a CLI runner, small synthetic datasets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import main


def real_data_dir(*names: str) -> Path:
    """$CNNKIT_DATA_DIR when it holds every file in `names`; otherwise the test is skipped."""
    directory = os.environ.get("CNNKIT_DATA_DIR")
    if not directory or not all((Path(directory) / name).exists() for name in names):
        pytest.skip(f"real data ({', '.join(names)}) not in $CNNKIT_DATA_DIR")
    return Path(directory)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `cnnkit ARGS` in-process: (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse exits for --help, --version and usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def interruptible() -> None:
    """Popen's preexec_fn for a child that a test stops with SIGINT: a shell's background job ignores SIGINT,
    and a Python started that way would keep ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_subprocess(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `cnnkit ARGS` in a fresh interpreter (real entry points, real signals)."""
    return subprocess.run(
        [sys.executable, "-m", "cnnkit.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def write_mnist_npz(
    directory: Path, train: int = 60_000, test: int = 10_000, seed: int = 0, contradict: slice | None = None
) -> Path:
    """A Keras-layout mnist.npz of random pixels whose labels are learnable (the class sets a bright block).

    `contradict`: training images whose labels are shifted by one class, so that what the network learns from
    the other images makes it ever more wrong on these (a validation split there gets worse every epoch).
    """
    rng = np.random.default_rng(seed)

    def images(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, count).astype(np.uint8)
        x = rng.integers(0, 60, (count, 28, 28), dtype=np.uint8)
        for digit in range(10):
            x[labels == digit, 2 * digit : 2 * digit + 6, 4:24] = 250
        return x, labels

    x_train, y_train = images(train)
    x_test, y_test = images(test)
    if contradict is not None:
        y_train[contradict] = (y_train[contradict] + 1) % 10
    path = directory / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path
