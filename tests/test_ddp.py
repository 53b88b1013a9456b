"""Real DDP: two CPU processes (gloo) launched by Lightning re-executing the `cnnkit` CLI.

The DDP run uses 64 images per process, so every optimizer step averages the gradients of the same 128 images a
single-process run with batch 128 uses (TensorBatches hands rank r the indices r, r+2, ... of the epoch's
permutation). The two runs are then the same computation up to the order of floating-point sums: equal step counts,
equal epoch metrics (reduced across both processes) and equal test accuracy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import real_data_dir

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

SUBSET = 2000
TRAIN = 1600  # the first 80% of the subset (Keras' validation_split=0.2)


def _cnnkit(*args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, float]:
    """The installed console script (what users run; DDP re-executes it in the child process), else `-m cnnkit.cli`."""
    script = Path(sys.executable).with_name("cnnkit")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cnnkit.cli"]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "GLOBAL_RANK")}
    started = time.perf_counter()
    proc = subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=timeout)
    return proc, time.perf_counter() - started


def _single_run(out: Path) -> Path:
    runs = sorted(out.glob("single/*/result.json"))
    assert len(runs) == 1, f"expected exactly one result.json under {out}, found {runs}"
    return runs[0].parent


def _metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


def _global_step(run_dir: Path) -> int:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return int(checkpoint["global_step"])


def test_ddp_two_cpu_processes_match_a_single_process_run(tmp_path: Path) -> None:
    data = real_data_dir("mnist.npz")
    common = ["--epochs", "1", "--subset", str(SUBSET), "--accelerator", "cpu", "--quiet", "--data-dir", str(data)]

    ddp_out = tmp_path / "ddp"
    ddp, ddp_seconds = _cnnkit(
        "run", "mnist", "net_1", "--strategy", "ddp", "--devices", "2", "--batch-size", "64",
        "--out", str(ddp_out), *common,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    single_out = tmp_path / "single"
    single, single_seconds = _cnnkit("run", "mnist", "net_1", "--out", str(single_out), *common)
    assert single.returncode == 0, single.stdout + single.stderr
    print(f"\nDDP (2 processes) run: {ddp_seconds:.1f} s; single-process run: {single_seconds:.1f} s")

    # Exactly one process wrote the run directory: one complete result, one config, one metrics row, checkpoints.
    run_dir = _single_run(ddp_out)
    assert ddp.stdout.count("results: ") == 1, ddp.stdout
    # .lock: the run lock, taken by rank 0 only; progress.json: where the run stands, written by rank 0 only
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".lock", "checkpoints", "config.json", "metrics.csv", "predictions.npz", "progress.json", "result.json",
    ]  # fmt: skip
    assert json.loads((run_dir / "progress.json").read_text())["stage"] == "finished"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    result = json.loads((run_dir / "result.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["trainer"]["devices"] == 2 and "DDP" in config["trainer"]["strategy"]
    assert config["data"]["train"] == TRAIN
    rows = _metrics_rows(run_dir)
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    assert result["epochs"] == 1 and len(result["history"]["val_loss"]) == 1
    assert 0.0 <= result["test_accuracy"] <= 1.0

    # The training set was sharded: each process ran ceil(1600 / 2 / 64) = 13 steps (25 if each saw every image).
    assert _global_step(run_dir) == math.ceil(TRAIN / 2 / 64)
    reference_dir = _single_run(single_out)
    assert _global_step(reference_dir) == math.ceil(TRAIN / 128)

    # Same computation as the single-process run, and the epoch metrics cover all 1,600 images (reduced across
    # processes; rank 0's own half alone would give other figures).
    reference = json.loads((reference_dir / "result.json").read_text())
    assert abs(result["test_accuracy"] - reference["test_accuracy"]) <= 0.05
    assert result["test_accuracy"] == pytest.approx(reference["test_accuracy"], abs=0.005)
    reference_rows = _metrics_rows(reference_dir)
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "train_eval_loss", "train_eval_accuracy"):
        assert float(rows[0][name]) == pytest.approx(float(reference_rows[0][name]), abs=0.005), name
