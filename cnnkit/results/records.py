"""What a run writes: the contents of config.json (when training starts), result.json and predictions.npz."""

from __future__ import annotations

import io
import platform
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.nets.presets import INIT_DESCRIPTION
from cnnkit.results.reading import TRAIN_EVAL_KEYS
from cnnkit.results.stats import best_epoch
from cnnkit.storage.atomic import write_atomic
from cnnkit.storage.locks import command_pid
from cnnkit.training.config import settings_record

if TYPE_CHECKING:
    from cnnkit.nets.summary import ModelSummary

MISCLASSIFIED_SAMPLES = 16
HISTORY_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def config_record(
    study: str,
    config: Any,
    hyperparameters: dict[str, Any],
    datamodule: Any,
    model: ModelSummary,
    trainer: Any,
    options: Any,
    deterministic: bool,
) -> dict[str, Any]:
    """Every resolved setting of a run, written to config.json when training starts."""
    from cnnkit.data.cache import cached_digest  # torch: only where a run trains

    return {
        "study": study,
        "run": settings_record(config),
        **settings_record(config),
        "optimizer_hparams": hyperparameters,
        "init": INIT_DESCRIPTION[config.preset],
        "data": {
            "source": Path(datamodule.source).name,  # no path of the machine that trained it
            "files": [{"name": path.name, "sha256": cached_digest(path)} for path in datamodule.files],
            **datamodule.split_sizes(),
            "image_shape": [datamodule.spec.height, datamodule.spec.width, datamodule.spec.channels],
            "num_classes": datamodule.num_classes(),
            "class_names": datamodule.class_names(),
        },
        "model": model.as_dict(),  # params (total), trainable_params, non_trainable_params, macs, layers
        "trainer": {
            "accelerator": type(trainer.accelerator).__name__.replace("Accelerator", "").lower(),
            "devices": trainer.num_devices,
            "strategy": type(trainer.strategy).__name__,
            "precision": str(trainer.precision),
            "num_nodes": trainer.num_nodes,
            "deterministic": deterministic,
            "compile": options.compile,
            "channels_last": options.channels_last,
        },
        "device": describe_device(trainer.strategy.root_device),
        "versions": library_versions(),
        "platform": platform.platform(),
    }


def result_record(
    config: Any,
    hyperparameters: dict[str, Any],
    model: ModelSummary,
    final: Mapping[str, float],
    best: Mapping[str, float],
    epoch_log: Any,
    datamodule: Any,
    trainer: Any,
    test_seconds: float | None = None,
) -> dict[str, Any]:
    """result.json: the test figures of the final and of the best-val_loss weights, history and timings.

    The history's clean training figures (`train_eval_loss`, `train_eval_accuracy`) are there when some epoch has
    them; an epoch without them (trained before they were added, then resumed) is null."""
    rows = epoch_log.rows
    history = {name: [row.get(name) for row in rows] for name in HISTORY_COLUMNS}
    history.update({name: [row.get(name) for row in rows] for name in TRAIN_EVAL_KEYS if any(name in r for r in rows)})
    train_seconds = float(sum(epoch_log.epoch_seconds))
    trained_images = datamodule.split_sizes()["train"] * len(epoch_log.epoch_seconds)
    return {
        **{k: v for k, v in settings_record(config).items() if k != "lr"},
        "lr": hyperparameters.get("lr"),
        "params": model.counts.params,
        "test_loss": final["test_loss"],
        "test_accuracy": final["test_accuracy"],
        "best_epoch": best_logged_epoch(epoch_log.rows),
        "stopped_epoch": len(epoch_log.rows),
        "planned_epochs": config.epochs,
        "best_test_loss": best["test_loss"],
        "best_test_accuracy": best["test_accuracy"],
        "history": history,
        "train_seconds": train_seconds,
        "images_per_second": trained_images / train_seconds if train_seconds else None,
        "epoch_seconds": epoch_log.epoch_seconds,
        "test_seconds": test_seconds,
        "device": describe_device(trainer.strategy.root_device),
        "trained_by": trained_by(),
        "finished": finished_stamp(),
    }


def trial_record(
    config: Any,
    hyperparameters: dict[str, Any],
    model: ModelSummary,
    epoch_log: Any,
    datamodule: Any,
    trainer: Any,
    trial: Mapping[str, Any],
) -> dict[str, Any]:
    """A search trial's result.json: its `trial` facts (number, state, the epoch it was pruned at, metric, value,
    the searched settings) and validation figures only: the test set stays closed during a search.

    `best_epoch` is the lowest val_loss epoch, as for any run (None when every epoch's val_loss is NaN); the
    trial's value, its best epoch's metric, is in `trial`."""
    rows = epoch_log.rows
    losses = [row.get("val_loss") for row in rows]
    best = best_epoch(losses) if any(v is not None and v == v for v in losses) else None  # v == v: not NaN
    at_best = rows[best - 1] if best else {}
    train_seconds = float(sum(epoch_log.epoch_seconds))
    trained_images = datamodule.split_sizes()["train"] * len(epoch_log.epoch_seconds)
    return {
        **{k: v for k, v in settings_record(config).items() if k != "lr"},
        "lr": hyperparameters.get("lr"),
        "params": model.counts.params,
        "trial": dict(trial),
        "best_epoch": best,
        "best_val_loss": at_best.get("val_loss"),
        "best_val_accuracy": at_best.get("val_accuracy"),
        "stopped_epoch": len(rows),
        "planned_epochs": config.epochs,
        "history": {name: [row.get(name) for row in rows] for name in HISTORY_COLUMNS},
        "train_seconds": train_seconds,
        "images_per_second": trained_images / train_seconds if train_seconds else None,
        "epoch_seconds": epoch_log.epoch_seconds,
        "device": describe_device(trainer.strategy.root_device),
        "trained_by": trained_by(),
        "finished": finished_stamp(),
    }


def write_progress(run_dir: Path, stage: str, epoch_seconds: list[float], test_seconds: float | None = None) -> None:
    """progress.json: where the run stands (`reading.PROGRESS_STAGES`), the wall time of each epoch it trained
    (training and validation) and, once tested, of its testing; so `cnnkit status` and a resumed study know its
    pace, and a run stopped by Ctrl-C is told from one whose process died."""
    from cnnkit.results.files import RunFiles
    from cnnkit.storage.atomic import write_json_atomic

    record = {"stage": stage, "epoch_seconds": [round(s, 3) for s in epoch_seconds], "test_seconds": test_seconds}
    write_json_atomic(RunFiles(run_dir).progress, {**record, "by": trained_by()})


def best_logged_epoch(rows: list[dict[str, float]]) -> int:
    """The best epoch (cnnkit.results.stats.best_epoch) of the epoch log's rows."""
    return best_epoch([row.get("val_loss") for row in rows])


def finished_stamp() -> str:
    """When the run finished, UTC to the second (ISO 8601): the date a report gives its runs."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def trained_by() -> dict[str, Any]:
    """Host and pid of the cnnkit command that trains this run (its process group leader under --jobs)."""
    return {"host": socket.gethostname(), "pid": command_pid()}


def write_predictions(path: Path, datamodule: Any, predictions: Any, probabilities: Any = None) -> None:
    """Test labels, predictions and probabilities (final weights, in test-set order) plus a few misclassified
    images and their test-set positions, for the report's error analysis."""
    import numpy as np

    images, labels = datamodule.split("test")
    y_true = labels.cpu().numpy()
    y_pred = predictions.numpy().astype(np.int64)
    wrong = np.flatnonzero(y_true != y_pred)[:MISCLASSIFIED_SAMPLES]
    arrays = {
        "y_true": y_true,
        "y_pred": y_pred,
        "misclassified_images": images[wrong].cpu().numpy().transpose(0, 2, 3, 1),
        "misclassified_true": y_true[wrong],
        "misclassified_pred": y_pred[wrong],
        "misclassified_index": wrong.astype(np.int64),
        "class_names": np.array(datamodule.class_names()),
    }
    if probabilities is not None:
        arrays["probabilities"] = probabilities.numpy().astype(np.float32)

    def write(handle: Any) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        handle.write(buffer.getvalue())

    write_atomic(path, write)


def describe_device(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU {platform.machine()} ({threads} thread{'' if threads == 1 else 's'})"


def library_versions() -> dict[str, str]:
    import importlib.metadata

    versions = {"python": platform.python_version()}
    for name in ("cnnkit", "torch", "lightning", "torchvision", "torchmetrics", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions
