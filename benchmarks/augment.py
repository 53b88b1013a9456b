"""Training throughput with `--augment flip,crop` against without, through cnnkit's real path, side by side.

One process, the same initial weights and data (the real CIFAR-10 tensors when present): each A/B round trains
`--warmup + --batches` batches of a run built as `cnnkit run` builds it, once without and once with `--augment`
(alternating which goes first), timing the steady-state steps only (see benchmarks/throughput.py, whose harness
this reuses).

    python benchmarks/augment.py                         # CIFAR-10, pooling net, flip,crop, CPU
    python benchmarks/augment.py --augment flip,crop,cutout --device cuda

The last line reads `augmented/plain throughput ratio: R (...)`; issue 17 asks for R >= 0.9 with flip,crop.
"""

from __future__ import annotations

import dataclasses
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
    augmented_config = dataclasses.replace(bench.config, augment=tuple(args.augment.split(",")))
    augmented_config = augmented_config.checked(get_registries())
    device = bench.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"augment: {bench.config.dataset} / {bench.config.architecture}, batch {throughput.BATCH_SIZE}, "
        f"{args.warmup}+{args.batches} batches x {args.repeats} A/B repeats, device {name}, B side: {args.augment}",
        flush=True,
    )

    def run(augmented: bool) -> float:
        return bench.run_cnnkit(augmented_config if augmented else bench.config)

    run(False)  # warm-up round: puts the data on the device
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
