"""What the Discussion and Conclusions say, derived from what the study varies (no wording here).

Comparisons follow the study's own factors: architectures on the same dataset and optimizer, optimizers on the
same network, published figures only where a run ran the published budget, overfitting only with enough epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnkit.report import analysis as an
from cnnkit.report.netinfo import NetInfo

POOL_VS_STRIDE = frozenset({"pooling_cnn", "strided_cnn"})
# The original assignment's training budget (its write-up): batch 128 on the whole training set, MNIST 10 epochs,
# CIFAR-10 30 epochs. A published reference may carry its own `epochs` / `batch_size`.
PUBLISHED_EPOCHS = {"mnist": 10, "cifar10": 30}
PUBLISHED_BATCH = 128
GAIN_THRESHOLD = 0.001  # best-epoch weights "beat" the final ones by at least 0.1 points


@dataclass(frozen=True)
class Published:
    """A configuration beside its published figure; `comparable` only when it ran the published budget."""

    group: an.Group
    ref: dict[str, Any]
    epochs: int | None
    batch: int
    comparable: bool


def published(groups: Sequence[an.Group]) -> list[Published]:
    out = []
    for group in groups:
        ref = group.reference
        if not ref:
            continue
        epochs = ref.get("epochs") or PUBLISHED_EPOCHS.get(group["dataset"])
        batch = int(ref.get("batch_size") or PUBLISHED_BATCH)
        planned = group.runs[0].result.get("planned_epochs") or group.runs[0].history.epochs
        same = epochs == planned and group.setting("subset") in (None, 0) and group.setting("batch_size") == batch
        out.append(Published(group, ref, epochs, batch, bool(same)))
    return out


@dataclass(frozen=True)
class Overfit:
    """A configuration that overfits (judged on its mean curves): from which epoch, and the evidence."""

    group: an.Group
    since: int  # first epoch after the lowest mean validation loss
    rise_rel: float
    acc_gap: float


def overfitting(groups: Sequence[an.Group], verdict: str) -> list[Overfit]:
    return [
        Overfit(g, g.fit.best_epoch + 1, g.fit.val_loss_rise_rel, g.fit.final_acc_gap)
        for g in groups
        if g.fit.verdict == verdict
    ]


@dataclass(frozen=True)
class Gain:
    group: an.Group
    gain: float  # mean of best-epoch minus final test accuracy over the seeds


def best_epoch_gains(groups: Sequence[an.Group]) -> list[Gain]:
    """Configurations whose best-epoch weights beat the final ones on mean test accuracy, largest gain first."""
    gains = [
        Gain(g, g.stats("best_test_accuracy").mean - g.stats("test_accuracy").mean)
        for g in groups
        if g.has("best_test_accuracy")
    ]
    return sorted((g for g in gains if g.gain >= GAIN_THRESHOLD), key=lambda g: -g.gain)


@dataclass
class ArchPair:
    """Two architectures on one dataset: how they differ, and their results per shared optimizer."""

    dataset: str
    a: NetInfo
    b: NetInfo
    results: list[an.Comparison] = field(default_factory=list)

    @property
    def pool_vs_stride(self) -> bool:
        return {self.a.architecture, self.b.architecture} == POOL_VS_STRIDE

    @property
    def macs_ratio(self) -> float | None:
        """b's multiply-adds as a fraction of a's."""
        return self.b.macs / self.a.macs if self.a.macs and self.b.macs is not None else None

    @property
    def only_a(self) -> list[str]:
        return [k for k in self.a.kinds if k not in self.b.kinds]

    @property
    def only_b(self) -> list[str]:
        return [k for k in self.b.kinds if k not in self.a.kinds]


def _ordered(x: NetInfo, y: NetInfo) -> tuple[NetInfo, NetInfo]:
    """The pooling net first in the pooling-versus-stride pair; else the net with more multiply-adds first."""
    if {x.architecture, y.architecture} == POOL_VS_STRIDE:
        return (x, y) if x.architecture == "pooling_cnn" else (y, x)
    return (x, y) if (x.macs or 0) >= (y.macs or 0) else (y, x)


def arch_pairs(rankings: Sequence[an.Ranking], nets: Sequence[NetInfo]) -> list[ArchPair]:
    """Architecture pairs, grouped by dataset (the structural contrast is said once per pair), each with its
    results per optimizer: neighbours in each ranking, plus the pooling-versus-stride pair wherever both ran."""
    by_key = {(n.dataset, n.architecture): n for n in nets}
    pairs: dict[tuple[str, frozenset[str]], ArchPair] = {}
    for rk in rankings:
        dataset = rk.shared["dataset"]
        duos = list(zip(rk.groups, rk.groups[1:], strict=False))
        both = [g for g in rk.groups if g["architecture"] in POOL_VS_STRIDE]
        if len(both) == 2 and not any({x["architecture"], y["architecture"]} == POOL_VS_STRIDE for x, y in duos):
            duos.append((both[0], both[1]))
        for x, y in duos:
            net_x, net_y = by_key.get((dataset, x["architecture"])), by_key.get((dataset, y["architecture"]))
            if net_x is None or net_y is None:
                continue
            key = (dataset, frozenset((x["architecture"], y["architecture"])))
            pair = pairs.setdefault(key, ArchPair(dataset, *_ordered(net_x, net_y)))
            pair.results.append(an.compare(x, y, "test_accuracy"))
    return sorted(pairs.values(), key=lambda p: not p.pool_vs_stride)


@dataclass(frozen=True)
class Slow:
    """A configuration run with Adadelta at a small learning rate beside the same one with Adam."""

    slow: an.Group
    fast: an.Group
    lr: float
    improving: bool


def adadelta_vs_adam(groups: Sequence[an.Group]) -> list[Slow]:
    """Configurations run with both Adadelta at a small learning rate and Adam (the original's MNIST puzzle)."""
    out = []
    same = ("dataset", "architecture", "epochs")
    for slow in groups:
        lr = (slow.runs[0].config.get("optimizer_hparams") or {}).get("lr")
        if slow["optimizer"] != "adadelta" or lr is None or lr >= 0.1:
            continue
        for fast in groups:
            if fast["optimizer"] == "adam" and [fast[k] for k in same] == [slow[k] for k in same]:
                improving = an.still_improving(slow.curves.mean.val_accuracy)
                out.append(Slow(slow, fast, lr, improving))
    return out


def best_per_dataset(groups: Sequence[an.Group]) -> dict[str, an.Group]:
    """The configuration with the highest mean final test accuracy on each dataset."""
    datasets = dict.fromkeys(g["dataset"] for g in groups)
    best = {}
    for ds in datasets:
        best[ds] = max((g for g in groups if g["dataset"] == ds), key=lambda g: g.stats("test_accuracy").mean)
    return best


def best_leads(groups: Sequence[an.Group]) -> list[an.Comparison]:
    """On each dataset with several configurations: the best one against the runner-up (final test accuracy)."""
    out = []
    for ds in dict.fromkeys(g["dataset"] for g in groups):
        ranked = sorted((g for g in groups if g["dataset"] == ds), key=lambda g: -g.stats("test_accuracy").mean)
        if len(ranked) > 1:
            out.append(an.compare(ranked[0], ranked[1], "test_accuracy"))
    return out


def slow_defaults_ranking(rankings: Sequence[an.Ranking], keras_defaults: bool) -> an.Ranking | None:
    """The optimizer ranking where Keras' small default learning rates best explain the order (said once):
    Adam first, Adagrad or Adadelta behind it, the most optimizers compared."""
    if not keras_defaults:
        return None
    fits = [
        rk
        for rk in rankings
        if rk.groups[0]["optimizer"] == "adam" and any(g["optimizer"] in ("adagrad", "adadelta") for g in rk.groups)
    ]
    return max(fits, key=lambda rk: len(rk.groups), default=None)
