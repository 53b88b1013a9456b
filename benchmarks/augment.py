"""Training throughput with `--augment flip,crop` against without, through cnnkit's real path, side by side.

One process, one network and one datamodule (the real CIFAR-10 tensors when present): each A/B round trains
`--warmup + --batches` batches through a Trainer configured like the runner's, once with the datamodule's
augmentations off and once with them on (alternating which goes first), timing the steady-state steps only
(see benchmarks/throughput.py, whose harness this reuses).

    python benchmarks/augment.py                         # CIFAR-10, pooling net, flip,crop, CPU
    python benchmarks/augment.py --augment flip,crop,cutout --device cuda

The last line reads `augmented/plain throughput ratio: R (...)`; issue 17 asks for R >= 0.9 with flip,crop.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput
import torch

from cnnkit.plugins import get_registries


def main(argv: list[str] | None = None) -> int:
    parser = throughput.argument_parser()
    parser.set_defaults(dataset="cifar10", repeats=6)
    parser.add_argument("--augment", default="flip,crop", help="augmentations of the B side (default flip,crop)")
    args = parser.parse_args(argv)
    throughput.quiet_lightning_messages()
    bench = throughput.Bench(args)
    steps = [get_registries().augmentations.get(name) for name in args.augment.split(",")]
    device = bench.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"augment: {bench.config.dataset} / {bench.config.architecture}, batch {throughput.BATCH_SIZE}, "
        f"{args.warmup}+{args.batches} batches x {args.repeats} A/B repeats, device {name}, B side: {args.augment}",
        flush=True,
    )

    def run(augmented: bool) -> float:
        bench.datamodule.augment_training_set(steps if augmented else ())
        return bench.run_cnnkit()

    run(False)  # warm-up round: sets the datamodule up on the device
    print(f"data: {bench.source}", flush=True)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for repeat in range(args.repeats):
        for augmented in (False, True) if repeat % 2 == 0 else (True, False):
            rates[augmented].append(run(augmented))
            label = args.augment if augmented else "none"
            print(f"repeat {repeat + 1}: {label:16s} {rates[augmented][-1]:8.1f} img/s", flush=True)
    plain, augmented = statistics.median(rates[False]), statistics.median(rates[True])
    ratios = [a / p for a, p in zip(rates[True], rates[False], strict=True)]
    print(f"without: median {plain:.1f} img/s ({throughput.spread(rates[False])})")
    print(f"with {args.augment}: median {augmented:.1f} img/s ({throughput.spread(rates[True])})")
    print(f"per-repeat ratio: median {statistics.median(ratios):.3f} ({throughput.spread(ratios, 3)})")
    print(f"augmented/plain throughput ratio: {augmented / plain:.3f} ({augmented:.1f} vs {plain:.1f} img/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
