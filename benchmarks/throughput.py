"""Training throughput of cnnkit's real path against a minimal plain-PyTorch loop on the same tensors.

Both sides train the same network (same initial weights, same optimizer, same batch order: the first epoch's
permutation of the training split, indexing the same uint8 tensor, scaled by 1/255 on the device) for
`--warmup + --batches` batches of 128. cnnkit goes through the registered datamodule and LightningModule and a
Trainer built with the runner's own settings (progress bar on, as a user gets it; validation disabled so both sides
do the same work). The sides alternate A/B `--repeats` times after one untimed warm-up round.

What is timed: the steady-state training steps only - from the start of batch `--warmup` to the end of the last
batch (device synchronised at both ends), on both sides. Trainer start-up/tear-down (and the epoch-end checkpoint)
and the plain loop's set-up are excluded from both; the cnnkit start-up cost is printed separately for information.

    python benchmarks/throughput.py                      # MNIST, pooling net, CPU
    python benchmarks/throughput.py --device cuda --precision bf16-mixed --channels-last

The last line always reads `cnnkit/plain throughput ratio: R (cnnkit X img/s, plain Y img/s)`.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without installing the scripts' parent
    sys.path.insert(0, str(REPO))

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cnnkit.data.datamodule import epoch_permutation, normalize_images  # noqa: E402
from cnnkit.data.formats import ImageArrays  # noqa: E402
from cnnkit.plugins import get_registries  # noqa: E402
from cnnkit.training.runner import RunConfig, TrainerOptions, trainer_kwargs  # noqa: E402

BATCH_SIZE = 128
SHARED_DATA = Path("/work/shared/data")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser()
    args = parser.parse_args(argv)
    if args.batches < 1 or args.warmup < 1 or args.repeats < 1:
        parser.error("--batches, --warmup and --repeats must be at least 1")
    return args


def argument_parser() -> argparse.ArgumentParser:
    """The options of a throughput measurement (benchmarks/augment.py adds its own)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--architecture", default="pooling_cnn")
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--batches", type=int, default=20, help="timed batches per repeat (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches at the start of every repeat (default 3)")
    p.add_argument("--repeats", type=int, default=8, help="A/B rounds after the warm-up round (default 8)")
    p.add_argument("--precision", default="32-true", help="32-true (default), bf16-mixed, 16-mixed")
    p.add_argument("--compile", action="store_true", help="torch.compile the network on both sides")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format on both sides")
    p.add_argument("--data-dir", default=None, help="default: $CNNKIT_DATA_DIR, else /work/shared/data if present")
    p.add_argument("--synthetic", action="store_true", help="random uint8 images even when real data is present")
    p.add_argument("--seed", type=int, default=0)
    return p


# -- the two sides -----------------------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_dir(args: argparse.Namespace) -> Path | None:
    for candidate in (args.data_dir, os.environ.get("CNNKIT_DATA_DIR"), SHARED_DATA):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def make_datamodule(args: argparse.Namespace, config: RunConfig) -> tuple[L.LightningDataModule, str]:
    """The registered datamodule; its files when present, else (or with --synthetic) random uint8 of the same shape."""
    registries = get_registries()
    cls = registries.datasets.get(config.dataset)
    directory = data_dir(args)
    real = not args.synthetic and directory is not None and any(s.present(directory) for s in cls.sources)
    if not real:
        spec = cls.spec

        class Synthetic(cls):  # type: ignore[misc, valid-type]
            def load_arrays(self) -> ImageArrays:
                rng = np.random.default_rng(0)
                shape = (spec.height, spec.width, spec.channels)
                return ImageArrays(
                    rng.integers(0, 256, (spec.train_count, *shape), dtype=np.uint8),
                    rng.integers(0, spec.num_classes, spec.train_count).astype(np.int64),
                    rng.integers(0, 256, (spec.test_count, *shape), dtype=np.uint8),
                    rng.integers(0, spec.num_classes, spec.test_count).astype(np.int64),
                    "synthetic",
                )

            def prepare_data(self) -> None:
                pass

        cls = Synthetic
    datamodule = cls(
        data_dir=directory,
        batch_size=config.batch_size,
        val_split=config.val_split,
        subset=config.subset,
        seed=config.seed,
        download=False,
    )
    return datamodule, (f"{directory}" if real else "synthetic uint8")


def runner_callbacks(options: TrainerOptions, run_dir: Path) -> list[L.Callback]:
    """The callbacks a run gets (checkpoints, metrics.csv, Ctrl-C handling, progress bar)."""
    from cnnkit.training import runner
    from cnnkit.training.callbacks import EpochLog, StopOnRequest

    return [
        *runner.checkpoint_callbacks(run_dir / "checkpoints"),
        EpochLog(run_dir / "metrics.csv"),
        StopOnRequest(),
        *runner.progress_callbacks(options),
    ]


class StepTimer(L.Callback):
    """Times training batches [first, last]: start of batch `first` to end of batch `last`, device synchronised."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.started = self.finished = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        if idx == self.first:
            synchronize(pl_module.device)
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if args[-1] == self.last:
            synchronize(pl_module.device)
            self.finished = time.perf_counter()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = resolve_device(args.device)
        self.total = args.warmup + args.batches
        self.config = RunConfig(args.dataset, args.architecture, optimizer=args.optimizer, seed=args.seed, epochs=1)
        registries = get_registries()
        self.config = self.config.checked(registries)
        self.options = TrainerOptions(
            accelerator=self.device.type,
            devices="1",
            precision=args.precision,
            compile=args.compile,
            quiet=False,
        )
        if "channels_last" in TrainerOptions.__dataclass_fields__:
            self.options = TrainerOptions(**{**self.options.__dict__, "channels_last": args.channels_last})
        self.datamodule, self.source = make_datamodule(args, self.config)
        optimizer = registries.optimizers.get(self.config.optimizer)
        architecture = registries.architectures.get(self.config.architecture)
        L.seed_everything(args.seed, verbose=False)
        dm = self.datamodule
        self.model = architecture(dm.input_shape(), dm.num_classes(), optimizer, self.config.preset, self.config.lr)
        self.initial = copy.deepcopy(self.model.network.state_dict())
        # The plain side: its own copy of the same network (same initial weights), plain nn.Module.
        self.network = copy.deepcopy(self.model.network).to(self.device)
        self.make_optimizer = lambda params: optimizer.build(params, self.config.preset, self.config.lr)
        if args.channels_last:
            self.network.to(memory_format=torch.channels_last)
            set_cl = getattr(self.model, "set_channels_last", None)
            if set_cl is None:
                raise SystemExit("--channels-last: this cnnkit's ImageClassifier has no set_channels_last()")
            set_cl(True)
        if args.compile:
            self.model.network.compile()
            self.network.compile()
        self.workdir = Path(tempfile.mkdtemp(prefix="cnnkit-bench-"))
        self.startup: list[float] = []

    # cnnkit: the registered LightningModule through a Trainer configured like the runner's.
    def run_cnnkit(self) -> float:
        self.model.network.load_state_dict(self.initial)
        run_dir = self.workdir / "run"
        kwargs = trainer_kwargs(self.config, self.options, run_dir)
        timer = StepTimer(self.args.warmup, self.total - 1)
        kwargs.update(
            max_epochs=1,
            limit_train_batches=self.total,
            limit_val_batches=0,  # no validation on either side
            callbacks=[*runner_callbacks(self.options, run_dir), timer],
        )
        trainer = L.Trainer(**kwargs)
        began = time.perf_counter()
        trainer.fit(self.model, datamodule=self.datamodule)
        ended = time.perf_counter()
        self.startup.append((ended - began) - (timer.finished - timer.started))
        return self.args.batches * BATCH_SIZE / (timer.finished - timer.started)

    # plain: index the same uint8 tensor by the same permutation, /255, forward, cross_entropy, backward, step.
    def run_plain(self) -> float:
        images, labels = self.datamodule.split("train")
        images, labels = images.to(self.device), labels.to(self.device)
        network = self.network
        network.load_state_dict(self.initial)
        network.train()
        optimizer = self.make_optimizer(network.parameters())
        order = epoch_permutation(len(labels), self.config.seed, 0).to(self.device)
        precision = self.args.precision
        if precision.startswith("bf16"):
            autocast: Any = lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)  # noqa: E731
        elif precision.startswith("16"):
            autocast = lambda: torch.autocast(self.device.type, dtype=torch.float16)  # noqa: E731
        else:
            autocast = nullcontext
        scaler = torch.amp.GradScaler(self.device.type, enabled=precision.startswith("16"))
        channels_last = self.args.channels_last
        # Lightning switched deterministic algorithms on for the whole process (the runner asks for them on CPU);
        # a plain loop runs in PyTorch's default mode.
        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(False)
        started = 0.0
        for step in range(self.total):
            if step == self.args.warmup:
                synchronize(self.device)
                started = time.perf_counter()
            index = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            x, y = normalize_images(images[index]), labels[index]
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                loss = F.cross_entropy(network(x), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        synchronize(self.device)
        seconds = time.perf_counter() - started
        torch.use_deterministic_algorithms(deterministic)
        return self.args.batches * BATCH_SIZE / seconds


def spread(values: list[float], digits: int = 1) -> str:
    """Interquartile range (from 4 values on) and min-max."""
    f = f".{digits}f"
    text = f"min-max {min(values):{f}}-{max(values):{f}}"
    if len(values) >= 4:
        q1, _, q3 = statistics.quantiles(values, n=4)
        text = f"IQR {q1:{f}}-{q3:{f}}, {text}"
    return text


def quiet_lightning_messages() -> None:
    import logging
    import warnings

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    for pattern in (
        ".*does not have many workers.*",
        ".*could not find the monitored key.*",
        ".*LitLogger.*",
        ".*LeafSpec.*",
        ".*exists and is not empty.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_lightning_messages()
    bench = Bench(args)
    device = bench.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"throughput: {bench.config.dataset} / {bench.config.architecture} / {bench.config.optimizer}, "
        f"batch {BATCH_SIZE}, {args.warmup}+{args.batches} batches x {args.repeats} A/B repeats, "
        f"device {name}, precision {args.precision}, compile {args.compile}, channels_last {args.channels_last}, "
        f"torch {torch.__version__}, lightning {L.__version__}",
        flush=True,
    )
    bench.run_cnnkit()  # warm-up round (sets the datamodule up on the device; compiles when asked)
    print(f"data: {bench.source}", flush=True)
    bench.run_plain()
    bench.startup.clear()
    cnnkit_rates: list[float] = []
    plain_rates: list[float] = []
    for repeat in range(args.repeats):
        # Alternate which side goes first so drift in the machine's speed hits both alike.
        sides = [("cnnkit", bench.run_cnnkit), ("plain", bench.run_plain)]
        for side, run in sides if repeat % 2 == 0 else sides[::-1]:
            rate = run()
            (cnnkit_rates if side == "cnnkit" else plain_rates).append(rate)
            print(f"repeat {repeat + 1}: {side:6s} {rate:8.1f} img/s", flush=True)
    cnnkit_median, plain_median = statistics.median(cnnkit_rates), statistics.median(plain_rates)
    ratios = [c / p for c, p in zip(cnnkit_rates, plain_rates, strict=True)]
    print(f"cnnkit: median {cnnkit_median:.1f} img/s ({spread(cnnkit_rates)})")
    print(f"plain:  median {plain_median:.1f} img/s ({spread(plain_rates)})")
    print(f"per-repeat ratio: median {statistics.median(ratios):.3f} ({spread(ratios, 3)})")
    print(
        f"cnnkit Trainer start-up + tear-down (not timed): median {statistics.median(bench.startup):.2f} s per fit",
        flush=True,
    )
    print(
        f"cnnkit/plain throughput ratio: {cnnkit_median / plain_median:.3f} "
        f"(cnnkit {cnnkit_median:.1f} img/s, plain {plain_median:.1f} img/s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
