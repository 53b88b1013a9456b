"""What the clean training figures cost: their evaluation pass beside the validation pass and the training epoch.

Each repeat fits one epoch of a run built as `cnnkit run` builds it (`build_run`: every callback, the clean
training figures included), its training stopped after `--warmup + --batches` batches; validation and the clean
evaluation then run on their whole sets (for CIFAR-10, 10,000 validation images and as many training images). Timed,
the device synchronised at both ends: the steady-state training steps (from batch `--warmup` on; the epoch's
training time is estimated from their rate and the training split's size), the validation epoch, and the clean
evaluation (`TrainingSetEvaluation.on_train_epoch_end`, the whole hook).

    python benchmarks/train_eval.py                      # CIFAR-10, net_1 (pooling_cnn), Adam, CPU
    python benchmarks/train_eval.py --device cuda

The last line reads `clean training figures: +S s per epoch (P% of training + validation, R x a validation pass)`.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightning as L
import throughput
import torch

from cnnkit.plugins import get_registries
from cnnkit.training.build import build_run
from cnnkit.training.runner import RunConfig, TrainerOptions
from cnnkit.training.train_eval import TrainingSetEvaluation


class ValidationTimer(L.Callback):
    """Seconds of the validation epoch, the device synchronised at both ends."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.started, self.seconds = device, 0.0, 0.0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        throughput.synchronize(self.device)
        self.started = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        throughput.synchronize(self.device)
        self.seconds = time.perf_counter() - self.started


def time_clean_evaluation(trainer: L.Trainer, device: torch.device) -> list[float]:
    """Wraps the run's TrainingSetEvaluation hook so that each call appends its seconds to the list returned."""
    (callback,) = [c for c in trainer.callbacks if isinstance(c, TrainingSetEvaluation)]  # type: ignore[attr-defined]
    hook, seconds = callback.on_train_epoch_end, []

    def timed(trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        throughput.synchronize(device)
        started = time.perf_counter()
        hook(trainer, pl_module)
        throughput.synchronize(device)
        seconds.append(time.perf_counter() - started)

    callback.on_train_epoch_end = timed  # type: ignore[method-assign]
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = throughput.argument_parser()
    parser.description = __doc__.split("\n\n")[0]
    parser.set_defaults(dataset="cifar10", batches=10, warmup=2, repeats=3)
    args = parser.parse_args(argv)
    throughput.quiet_lightning_messages()
    device = throughput.resolve_device(args.device)
    registries, directory, source = throughput.with_data(args, get_registries(), args.dataset)
    config = RunConfig(args.dataset, args.architecture, optimizer=args.optimizer, seed=args.seed, epochs=1)
    config = config.checked(registries)
    options = TrainerOptions(
        accelerator=device.type,
        devices="1",
        precision=args.precision,
        data_dir=None if directory is None else str(directory),
        quiet=True,
        compile=args.compile,
        channels_last=args.channels_last,
    )
    workdir = Path(tempfile.mkdtemp(prefix="cnnkit-bench-"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"train_eval: {config.dataset} / {config.architecture} / {config.optimizer}, batch {config.batch_size}, "
        f"{args.warmup}+{args.batches} training batches x {args.repeats} repeats, device {name}, "
        f"precision {args.precision}; data: {source}",
        flush=True,
    )
    rates: list[float] = []
    validation: list[float] = []
    clean: list[float] = []
    sizes: dict[str, int] = {}
    for repeat in range(args.repeats):
        steps = throughput.StepTimer(args.warmup, args.warmup + args.batches - 1)
        val_timer = ValidationTimer(device)
        run = build_run(
            config,
            options,
            workdir / f"run{repeat}",
            registries,
            None,
            "benchmark",
            extra_callbacks=[steps, val_timer],
            trainer_settings={"limit_train_batches": args.warmup + args.batches},
        )
        seconds = time_clean_evaluation(run.trainer, device)
        run.trainer.fit(run.model, datamodule=run.datamodule)
        shutil.rmtree(run.run_dir, ignore_errors=True)  # its checkpoints (~25 MB for CIFAR-10 net_1 with Adam)
        sizes = run.datamodule.split_sizes()
        rates.append(args.batches * config.batch_size / (steps.finished - steps.started))
        validation.append(val_timer.seconds)
        clean.append(seconds[0])
        print(
            f"repeat {repeat + 1}: training {rates[-1]:8.1f} img/s | validation ({sizes['val']:,} images) "
            f"{validation[-1]:7.2f} s | clean training figures ({min(sizes['val'], sizes['train']):,} training "
            f"images) {clean[-1]:7.2f} s",
            flush=True,
        )
    rate, val_s, clean_s = statistics.median(rates), statistics.median(validation), statistics.median(clean)
    train_s = sizes["train"] / rate
    print(f"training epoch ({sizes['train']:,} images at the median {rate:.1f} img/s): {train_s:.1f} s (estimated)")
    print(f"validation pass: median {val_s:.2f} s ({throughput.spread(validation, 2)})")
    print(f"clean training figures: median {clean_s:.2f} s ({throughput.spread(clean, 2)})")
    print(
        f"clean training figures: +{clean_s:.2f} s per epoch ({100 * clean_s / (train_s + val_s):.1f}% of training + "
        f"validation, {clean_s / val_s:.2f} x a validation pass)",
        flush=True,
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
