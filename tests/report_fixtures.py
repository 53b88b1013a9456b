"""Synthetic study directories with realistic result files (no training), for analysis and report tests."""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MNIST_CLASSES = [str(i) for i in range(10)]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DATASETS = {
    "mnist": {"shape": [28, 28, 1], "classes": MNIST_CLASSES, "train": 48000, "val": 12000, "test": 10000},
    "cifar10": {"shape": [32, 32, 3], "classes": CIFAR_CLASSES, "train": 40000, "val": 10000, "test": 10000},
    "fashion_mnist": {"shape": [28, 28, 1], "classes": MNIST_CLASSES, "train": 48000, "val": 12000, "test": 10000},
}
HPARAMS = {
    "adam": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-07, "weight_decay": 0.0},
    "adagrad": {"lr": 0.001, "initial_accumulator_value": 0.1, "eps": 1e-07, "weight_decay": 0.0},
    "adadelta": {"lr": 0.001, "rho": 0.95, "eps": 1e-07, "weight_decay": 0.0},
}
# (dataset, architecture, optimizer, epochs, published reference or None)
ASSIGNMENT_RUNS: list[tuple[str, str, str, int, dict[str, Any] | None]] = [
    ("mnist", "pooling_cnn", "adadelta", 10, {"test_loss": 0.4901, "test_accuracy": 0.8736}),
    ("mnist", "pooling_cnn", "adam", 10, None),
    ("mnist", "strided_cnn", "adadelta", 10, {"test_loss": 0.5062, "test_accuracy": 0.8735}),
    ("mnist", "strided_cnn", "adam", 10, None),
    ("cifar10", "pooling_cnn", "adam", 30, {"test_loss": 2.8947, "test_accuracy": 0.6597}),
    ("cifar10", "pooling_cnn", "adagrad", 30, {"test_loss": 1.4304, "test_accuracy": 0.4914}),
    ("cifar10", "pooling_cnn", "adadelta", 30, {"test_loss": 1.9030, "test_accuracy": 0.3556}),
]
# Curve shapes: (final val accuracy, final train accuracy, convergence rate, val-loss rise after its minimum)
SHAPES = {
    ("mnist", "adadelta"): (0.865, 0.845, 0.18, 0.0),
    ("mnist", "adam"): (0.990, 0.998, 1.5, 0.25),
    ("cifar10", "adam"): (0.665, 0.985, 0.5, 1.8),
    ("cifar10", "adagrad"): (0.495, 0.530, 0.12, 0.0),
    ("cifar10", "adadelta"): (0.360, 0.350, 0.06, 0.0),
}
N_TEST = 2000


# Run settings beyond the assignment's (issue 17): their directory-name parts, in the runner's fixed order.
NAME_PARTS = {
    "lr": lambda v: f"lr{v:g}",
    "augment": lambda v: "aug_" + "+".join(v),
    "dropout": lambda v: f"drop{v:g}",
    "weight_decay": lambda v: f"wd{v:g}",
    "lr_schedule": lambda v: f"sched_{v}",
    "early_stopping": lambda v: f"es{v}",
    "arch": lambda v: f"arch{zlib.crc32(json.dumps(v, sort_keys=True).encode()):08x}",
}


def run_dir(dataset: str, architecture: str, optimizer: str, seed: int = 0, settings: dict | None = None) -> str:
    parts = [NAME_PARTS[k](v) for k, v in (settings or {}).items() if k in NAME_PARTS and v]
    return "-".join([dataset, architecture, optimizer, *parts, f"seed{seed}"])


def _shape(dataset: str, optimizer: str, settings: dict[str, Any]) -> tuple[float, float, float, float]:
    """The curve shape of a run: a larger Adadelta lr converges further; each lever curbs the val-loss rise."""
    val_end, train_end, rate, rise = SHAPES.get((dataset, optimizer), (0.8, 0.85, 0.3, 0.1))
    lr = settings.get("lr")
    if optimizer == "adadelta" and lr:
        steps = max(0.0, np.log10(lr / 0.001))  # decades above Keras' 1e-3
        val_end = min(0.99, val_end + 0.042 * steps)
        train_end, rate = min(0.999, train_end + 0.05 * steps), rate * (1 + steps)
    for lever, (keep, gain) in {"augment": (0.05, 0.04), "dropout": (0.4, 0.015), "weight_decay": (0.6, 0.01),
                                "lr_schedule": (0.8, 0.01)}.items():  # fmt: skip
        if settings.get(lever):
            rise, val_end = rise * keep, val_end + gain
            train_end = max(val_end, train_end - (train_end - val_end) * (1 - keep))
    return val_end, train_end, rate, rise


def layers(dataset: str, architecture: str) -> list[dict[str, Any]]:
    """Keras-style summary rows of net_1 (pooling) or net_2 (strided)."""
    h, w, c = DATASETS[dataset]["shape"]
    rows = [{"name": "conv2d", "type": "Conv2D", "output_shape": [None, h, w, 32], "params": 9 * c * 32 + 32}]
    if architecture == "pooling_cnn":
        rows.append({"name": "conv2d_1", "type": "Conv2D", "output_shape": [None, h, w, 64], "params": 18496})
        rows.append({"name": "max_pooling2d", "type": "MaxPooling2D", "output_shape": [None, h // 2, w // 2, 64]})
    else:
        rows.append({"name": "conv2d_1", "type": "Conv2D", "output_shape": [None, h // 2, w // 2, 64], "params": 18496})
    flat = h // 2 * w // 2 * 64
    rows.append({"name": "flatten", "type": "Flatten", "output_shape": [None, flat]})
    rows.append({"name": "dense", "type": "Dense", "output_shape": [None, 128], "params": flat * 128 + 128})
    rows.append({"name": "dense_1", "type": "Dense", "output_shape": [None, 10], "params": 1290})
    for row in rows:
        row.setdefault("params", 0)
    return rows


def _history(
    dataset: str, optimizer: str, epochs: int, rng: np.random.Generator, settings: dict[str, Any] | None = None
) -> dict[str, list[float]]:
    val_end, train_end, rate, rise = _shape(dataset, optimizer, settings or {})
    t = np.arange(1, epochs + 1, dtype=float)
    chance = 0.1
    progress = (1 - np.exp(-rate * t)) / (1 - np.exp(-rate * epochs))
    val_acc = chance + (val_end - chance) * progress + rng.normal(0, 0.003, epochs)
    train_acc = chance + (train_end - chance) * progress + rng.normal(0, 0.002, epochs)
    train_loss = -np.log(np.clip(train_acc, 0.05, 0.999)) * 1.2 + 0.01
    val_loss = -np.log(np.clip(val_acc, 0.05, 0.999)) * 1.3 + 0.02
    turn = max(1, epochs // 4)
    val_loss = val_loss + rise * np.clip(t - turn, 0, None) / max(1, epochs - turn) * (val_loss.min() + 0.5)
    clip = lambda a: np.clip(a, 0.0, 1.0).round(6).tolist()  # noqa: E731
    return {
        "train_loss": train_loss.round(6).tolist(),
        "train_accuracy": clip(train_acc),
        "val_loss": val_loss.round(6).tolist(),
        "val_accuracy": clip(val_acc),
    }


def _predictions(accuracy: float, n_classes: int, shape: Sequence[int], rng: np.random.Generator) -> dict:
    y_true = rng.integers(0, n_classes, N_TEST)
    wrong = rng.random(N_TEST) > accuracy
    # errors go mostly to a "neighbour" class, like 4<->9 or cat<->dog
    offset = np.where(rng.random(N_TEST) < 0.6, 1, rng.integers(1, n_classes, N_TEST))
    y_pred = np.where(wrong, (y_true + offset) % n_classes, y_true)
    idx = np.flatnonzero(y_pred != y_true)[:16]
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    images = []
    for k in idx:
        cy, cx = rng.uniform(6, shape[0] - 6, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (3 + y_true[k]) ** 2))
        images.append(np.repeat((blob * 255)[..., None], shape[2], axis=2).astype(np.uint8))
    return {
        "y_true": y_true.astype(np.int64),
        "y_pred": y_pred.astype(np.int64),
        "misclassified_images": np.asarray(images, dtype=np.uint8).reshape(len(idx), *shape),
        "misclassified_true": y_true[idx].astype(np.int64),
        "misclassified_pred": y_pred[idx].astype(np.int64),
    }


def _write_run(
    path: Path,
    study: str,
    dataset: str,
    arch: str,
    opt: str,
    seed: int,
    epochs: int,
    model: dict[str, Any] | None,
    subset: int | None,
    settings: dict[str, Any] | None = None,
) -> None:
    info = DATASETS[dataset]
    settings = settings or {}
    rng = np.random.default_rng([seed, zlib.crc32(f"{dataset}-{arch}-{opt}-{epochs}-{settings}".encode())])
    hist = _history(dataset, opt, epochs, rng, settings)
    patience = settings.get("early_stopping")
    if patience:  # stop `patience` epochs after the lowest validation loss, as Lightning's EarlyStopping does
        stop = min(epochs, int(np.argmin(hist["val_loss"])) + 1 + patience)
        hist = {k: v[:stop] for k, v in hist.items()}
    trained = len(hist["val_loss"])
    model = model or {"params": sum(r["params"] for r in layers(dataset, arch)), "layers": layers(dataset, arch)}
    params = model["params"]
    config = {
        "study": study, "dataset": dataset, "architecture": arch, "optimizer": opt, "preset": "keras",
        "seed": seed, "epochs": epochs, "batch_size": 128, "val_split": 0.2, "subset": subset,
        "optimizer_hparams": {**HPARAMS.get(opt, {"lr": 0.01}), **({"lr": settings["lr"]} if "lr" in settings else {})},
        "init": "glorot-uniform kernels, zero biases (Keras defaults)",
        "data": {"source": f"/data/{dataset}.npz", "train": info["train"], "val": info["val"], "test": info["test"],
                 "image_shape": info["shape"], "num_classes": 10, "class_names": info["classes"]},
        "model": model,
        "trainer": {"accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "32-true",
                    "num_nodes": 1, "deterministic": True},
        "device": "CPU (2 threads)",
        "versions": {"cnnkit": "0.1.0", "python": "3.11.7", "torch": "2.14.1", "lightning": "2.5.0",
                     "torchvision": "0.29.1", "torchmetrics": "1.6.0", "numpy": "2.4.6"},
        "platform": "Linux-6.1-x86_64",
    }  # fmt: skip
    if settings:  # written by cnnkit since the training levers (issue 17)
        levers = {
            "augment": list(settings.get("augment", ())),
            "dropout": settings.get("dropout", 0.0),
            "weight_decay": settings.get("weight_decay", 0.0),
            "weight_decay_mode": "decoupled",
            "lr_schedule": settings.get("lr_schedule"),
            "early_stopping": settings.get("early_stopping"),
        }
        config.update({"lr": settings.get("lr"), **levers, "label": settings.get("label"), "levers": levers})
        del config["weight_decay_mode"]  # fmt: skip
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    with (path / "metrics.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["epoch", *hist])
        for e in range(trained):
            out.writerow([e + 1, *(hist[k][e] for k in hist)])
    best = int(np.argmin(hist["val_loss"]))
    epoch_s = (rng.normal(20.0 if dataset == "mnist" else 30.0, 0.5, trained)).round(3).tolist()
    result = {
        "dataset": dataset, "architecture": arch, "optimizer": opt, "preset": "keras", "seed": seed,
        "epochs": epochs, "batch_size": 128, "params": params,
        "test_loss": round(hist["val_loss"][-1] * 1.01, 6), "test_accuracy": round(hist["val_accuracy"][-1] - 0.002, 6),
        "best_epoch": best + 1, "best_test_loss": round(hist["val_loss"][best] * 1.01, 6),
        "best_test_accuracy": round(hist["val_accuracy"][best] - 0.001, 6), "history": hist,
        "train_seconds": round(sum(epoch_s), 3), "images_per_second": round(info["train"] / np.mean(epoch_s), 1),
        "epoch_seconds": epoch_s, "device": "CPU (2 threads)",
    }  # fmt: skip
    if settings:
        result.update({k: config[k] for k in ("lr", *NAME_PARTS, "label") if k in config})
        result.update(stopped_epoch=trained, planned_epochs=epochs)
    (path / "result.json").write_text(json.dumps(result, indent=2))
    preds = _predictions(result["test_accuracy"], 10, info["shape"], rng)
    np.savez(path / "predictions.npz", class_names=np.array(info["classes"]), **preds)


def make_study(
    path: Path,
    runs: Sequence[tuple[Any, ...]] = ASSIGNMENT_RUNS,
    seeds: int = 1,
    missing: Iterable[str] = (),
    name: str = "assignment",
    models: dict[str, dict[str, Any]] | None = None,
    subset: int | None = None,
) -> Path:
    """Write study.json and every run's files under `path`; run dirs named in `missing` are listed but not written.

    A run is (dataset, architecture, optimizer, epochs, reference[, settings]); `settings` holds the training
    levers and lr of issue 17 (`lr`, `augment`, `dropout`, `weight_decay`, `lr_schedule`, `early_stopping`).

    `models` gives config.json's `model` record by architecture (default: the assignment's nets, without macs).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    missing = set(missing)
    entries = []
    for dataset, arch, opt, epochs, ref, *extra in runs:
        settings = extra[0] if extra else {}
        for seed in range(seeds):
            d = run_dir(dataset, arch, opt, seed, settings)
            reference = {**ref, "label": "original assignment (Keras)"} if ref else None
            entries.append({"dir": d, "dataset": dataset, "architecture": arch, "optimizer": opt, "seed": seed,
                            "epochs": epochs, "batch_size": 128, "val_split": 0.2, "preset": "keras", "subset": subset,
                            "reference": reference, **settings})  # fmt: skip
            if d not in missing:
                _write_run(path / d, name, dataset, arch, opt, seed, epochs, (models or {}).get(arch), subset, settings)
    study = {"name": name, "description": "Synthetic study for tests.", "runs": entries}
    (path / "study.json").write_text(json.dumps(study, indent=2))
    return path


# ----------------------------------------------------------------------------------------------- third-party nets
TINYRES_READER = {
    "display_name": "TinyRes",
    "summary": {"en": "A small residual network written outside cnnkit.", "es": "Una red residual pequeña externa."},
    "citation": "He, K., Zhang, X., Ren, S. & Sun, J. (2016). Deep residual learning for image recognition. CVPR.",
    "cite_as": "He et al., 2016",
}
FASHION_READER = {
    "display_name": "Fashion-MNIST",
    "summary": {"en": "Zalando's article images.", "es": "Imágenes de artículos de Zalando."},
    "citation": "Xiao, H., Rasul, K. & Vollgraf, R. (2017). Fashion-MNIST: a novel image dataset. arXiv:1708.07747.",
    "cite_as": "Xiao et al., 2017",
}


def residual_classifier() -> type:
    """A third party's residual net (two blocks of two 3x3 convs with batch norm, max-pool between, global average
    pooling), as an ImageClassifier; imports torch, so only tests that need it call this."""
    from torch import nn

    from cnnkit import ImageClassifier

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout),
            )  # fmt: skip
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

        def forward(self, x):
            return (self.body(x) + self.skip(x)).relu()

    class TinyRes(ImageClassifier):
        def build_network(self, input_shape, num_classes, preset):
            channels = input_shape[0]
            return nn.Sequential(
                Block(channels, 16), nn.MaxPool2d(2), Block(16, 32),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes),
            )  # fmt: skip

    return TinyRes


def old_layer_rows(network: Any, input_shape: tuple[int, int, int]) -> dict[str, Any]:
    """config.json's `model` as runs trained before exact counting wrote it: top-level rows, no multiply-adds."""
    from cnnkit.nets.summary import summarize

    rows = [row.as_dict() for row in summarize(network, input_shape).layers]
    return {"params": sum(r["params"] for r in rows), "layers": rows}


# ----------------------------------------------------------------------------------------------- follow-up studies
ADADELTA_LR_RUNS = [
    ("mnist", "strided_cnn", "adadelta", 10,
     {"test_loss": 0.5062, "test_accuracy": 0.8735} if lr == 0.001 else None, {"lr": lr})
    for lr in (0.001, 0.01, 0.1, 1.0)
]  # fmt: skip
LEVERS = {"augment": ("flip", "crop"), "dropout": 0.25, "weight_decay": 5e-4, "lr_schedule": "cosine"}
CIFAR10_LEVERS_RUNS = [
    ("cifar10", "pooling_cnn", "adam", 30, None, settings)
    for settings in ({}, *({k: v} for k, v in LEVERS.items()), LEVERS)
]
