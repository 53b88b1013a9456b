"""Lightning experiment loggers (`--logger tensorboard|csv`): a run's epoch curves, written inside its directory.

`tensorboard --logdir runs/` then shows every run's curves as they grow (one folder `RUN_DIR/logs/` per run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnkit.errors import UsageError

LOGGERS = ("tensorboard", "csv")
LOG_FOLDER = "logs"


def check_logger(kind: str | None) -> str | None:
    """`kind` if cnnkit knows it and its package is installed, else a UsageError saying what to do."""
    if kind is None:
        return None
    if kind not in LOGGERS:
        raise UsageError(f"unknown --logger '{kind}' (choose from: {', '.join(LOGGERS)})")
    if kind == "tensorboard":
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise UsageError("--logger tensorboard needs TensorBoard: pip install 'cnnkit[tensorboard]'")
    return kind


def experiment_logger(kind: str | None, run_dir: Path) -> Any:
    """The Lightning logger writing to `run_dir/logs/` (the same folder when a run resumes), or False for none."""
    if check_logger(kind) is None:
        return False
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    factory = TensorBoardLogger if kind == "tensorboard" else CSVLogger
    return factory(save_dir=run_dir, name=LOG_FOLDER, version="")
