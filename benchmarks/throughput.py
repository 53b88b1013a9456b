"""Training throughput of cnnkit's real path against a minimal plain-PyTorch loop on the same tensors.

Both sides train the same network (same initial weights, same optimizer, same batch order: the first epoch's
permutation of the training split, indexing the same uint8 tensor, scaled by 1/255 on the device) for
`--warmup + --batches` batches of 128. cnnkit's side is a run built by the runner's own `build_run` (the
registered datamodule and LightningModule, every callback a run gets, the progress bar on as a user gets it), with
two changes made explicitly: a step timer added, and validation disabled so that both sides do the same work.
The sides alternate A/B `--repeats` times after one untimed warm-up round.

What is timed: the steady-state training steps only - from the start of batch `--warmup` to the end of the last
batch (device synchronised at both ends), on both sides. Building the run, Trainer start-up/tear-down (and the
epoch-end checkpoint) and the plain loop's set-up are excluded from both; the cnnkit start-up cost (the fit less its
timed steps) is printed separately for information.

    python benchmarks/throughput.py                      # MNIST, pooling net, CPU
    python benchmarks/throughput.py --device cuda --precision bf16-mixed --channels-last

The last line always reads `cnnkit/plain throughput ratio: R (cnnkit X img/s, plain Y img/s)`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
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

from cnnkit.console.progress import RunProgress, run_label  # noqa: E402
from cnnkit.data.datamodule import epoch_permutation, normalize_images  # noqa: E402
from cnnkit.data.formats import ImageArrays, ImageSetSpec  # noqa: E402
from cnnkit.plugins import Registries, get_registries  # noqa: E402
from cnnkit.registry import Entry, Registry  # noqa: E402
from cnnkit.training.build import BuiltRun, build_run  # noqa: E402
from cnnkit.training.runner import RunConfig, TrainerOptions  # noqa: E402

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


def with_data(args: argparse.Namespace, registries: Registries, dataset: str) -> tuple[Registries, Path | None, str]:
    """`registries` with `dataset` reading its files when present, else (or with --synthetic) swapped for random
    uint8 images of the same shape; the data directory and a description of the data."""
    directory = data_dir(args)
    cls = registries.datasets.get(dataset)
    if not args.synthetic and directory is not None and any(s.present(directory) for s in cls.sources):
        return registries, directory, str(directory)
    spec = cls.spec

    class Synthetic(cls):  # type: ignore[misc, valid-type]
        def load_arrays(self) -> ImageArrays:
            return synthetic_arrays(spec)

        def prepare_data(self) -> None:
            pass

    datasets: Registry[Any] = Registry("dataset")
    datasets.add(Entry("dataset", dataset, Synthetic, plugin="benchmarks/throughput.py"))
    return dataclasses.replace(registries, datasets=datasets), None, "synthetic uint8"


@functools.cache
def synthetic_arrays(spec: ImageSetSpec) -> ImageArrays:
    """Random images and labels of `spec`'s shapes and counts, made once per process."""
    rng = np.random.default_rng(0)
    shape = (spec.height, spec.width, spec.channels)
    return ImageArrays(
        rng.integers(0, 256, (spec.train_count, *shape), dtype=np.uint8),
        rng.integers(0, spec.num_classes, spec.train_count).astype(np.int64),
        rng.integers(0, 256, (spec.test_count, *shape), dtype=np.uint8),
        rng.integers(0, spec.num_classes, spec.test_count).astype(np.int64),
        "synthetic",
    )


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
        registries = get_registries()
        self.config = RunConfig(args.dataset, args.architecture, optimizer=args.optimizer, seed=args.seed, epochs=1)
        self.config = self.config.checked(registries)
        self.registries, directory, self.source = with_data(args, registries, self.config.dataset)
        self.options = TrainerOptions(
            accelerator=self.device.type,
            devices="1",
            precision=args.precision,
            data_dir=None if directory is None else str(directory),
            quiet=False,
            compile=args.compile,
            channels_last=args.channels_last,
        )
        self.workdir = Path(tempfile.mkdtemp(prefix="cnnkit-bench-"))
        self.startup: list[float] = []
        # The plain side: the network of the same run, built without --compile/--channels-last (same initial
        # weights), which it then applies itself to a plain nn.Module.
        plain = self.build(self.config, dataclasses.replace(self.options, compile=False, channels_last=False))
        self.initial = copy.deepcopy(plain.model.network.state_dict())
        self.network = plain.model.network.to(self.device)
        plain.datamodule.setup("fit")
        self.train_split = tuple(tensor.to(self.device) for tensor in plain.datamodule.split("train"))
        optimizer = self.registries.optimizers.get(self.config.optimizer)
        self.make_optimizer = lambda params: optimizer.build(params, self.config.preset, self.config.lr)
        if args.channels_last:
            self.network.to(memory_format=torch.channels_last)
        if args.compile:
            self.network.compile()

    def build(self, config: RunConfig, options: TrainerOptions, *callbacks: L.Callback) -> BuiltRun:
        """The run `cnnkit run` would build, its Trainer stopped after `self.total` batches and never validating."""
        return build_run(
            config,
            options,
            self.workdir / "run",
            self.registries,
            RunProgress(run_label(config)),
            "benchmark",
            extra_callbacks=callbacks,
            trainer_settings={"limit_train_batches": self.total, "limit_val_batches": 0},
        )

    # cnnkit: a run built as `cnnkit run` builds it (the config's levers included), fitted from the same weights.
    def run_cnnkit(self, config: RunConfig | None = None) -> float:
        timer = StepTimer(self.args.warmup, self.total - 1)
        run = self.build(config or self.config, self.options, timer)
        run.model.network.load_state_dict(self.initial)  # the plain side's (a build with this seed makes the same)
        began = time.perf_counter()
        run.trainer.fit(run.model, datamodule=run.datamodule)
        ended = time.perf_counter()
        self.startup.append((ended - began) - (timer.finished - timer.started))
        return self.args.batches * BATCH_SIZE / (timer.finished - timer.started)

    # plain: index the same uint8 tensor by the same permutation, /255, forward, cross_entropy, backward, step.
    def run_plain(self) -> float:
        images, labels = self.train_split
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
    bench.run_cnnkit()  # warm-up round (puts the data on the device; compiles when asked)
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
