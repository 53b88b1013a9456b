"""What the Discussion and Conclusions say, derived from what the study varies (no wording here).

Comparisons follow the study's own factors: architectures on the same dataset and optimizer, optimizers on the
same network, published figures only where a run ran the published budget, overfitting only with enough epochs.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnkit.report import analysis as an
from cnnkit.report.netinfo import NetInfo, NetKey, net_key
from cnnkit.results.stats import prediction_interval

GAIN_THRESHOLD = 0.001  # best-epoch weights "beat" the final ones by at least 0.1 points
# A run's learning rate at most this fraction of its optimizer's usual one (the class's own default, the method's
# setting) is "far below" it: Adadelta at Keras' 1e-3 is a thousandth of its 1.0.
FAR_BELOW_USUAL = 0.01


@dataclass(frozen=True)
class OptimizerDefaults:
    """An optimizer's learning rate under the keras preset beside its usual one (its own class default)."""

    keras_lr: float | None
    usual_lr: float | None

    @property
    def keras_is_slow(self) -> bool:
        """Keras' default is below the method's usual rate (Adadelta, Adagrad; not Adam)."""
        return self.keras_lr is not None and self.usual_lr is not None and self.keras_lr < self.usual_lr


def _pooling_layers(net: NetInfo) -> list[dict[str, Any]]:
    return [x for x in net.layers if "Pool" in str(x.get("type", ""))]


def downsampling_contrast(x: NetInfo, y: NetInfo) -> tuple[NetInfo, NetInfo] | None:
    """(pooling net, strided net) when the two are one network that downsamples by max-pooling in one and by a
    strided convolution in the other: the same layers and parameters once the pooling layers are left out, and
    the same output shape; None otherwise."""
    for pooled, strided in ((x, y), (y, x)):
        if not _pooling_layers(pooled) or _pooling_layers(strided) or pooled.dataset != strided.dataset:
            continue
        layers = pooled.layers
        pools = {i for i, layer in enumerate(layers) if "Pool" in str(layer.get("type", ""))}
        # the layer a pooling layer follows is the one the strided net makes smaller: its shape is left out
        kept = [
            (layer.get("type"), layer.get("params"), None if i + 1 in pools else layer.get("output_shape"))
            for i, layer in enumerate(layers)
            if i not in pools
        ]
        other = [
            (layer.get("type"), layer.get("params"), None if kept[i][2] is None else layer.get("output_shape"))
            for i, layer in enumerate(strided.layers[: len(kept)])
        ]
        if len(strided.layers) == len(kept) and kept == other and pooled.params == strided.params:
            return pooled, strided
    return None


def has_downsampling_contrast(nets: Sequence[NetInfo]) -> bool:
    """Some two networks of the study, on one dataset, differ only in how they downsample."""
    return any(downsampling_contrast(x, y) for x, y in itertools.combinations(nets, 2))


@dataclass(frozen=True)
class Published:
    """A configuration beside its published figure; `comparable` only when it ran the published budget.

    A published figure is one run: it is judged by the 95 % prediction interval of one more run of the
    configuration (`interval`, two or more seeds); with one seed it cannot be tested (`verdict` "untested")."""

    group: an.Group
    ref: dict[str, Any]
    epochs: int | None
    batch: int
    comparable: bool

    @property
    def gap(self) -> float:
        return self.group.stats("test_accuracy").mean - float(self.ref["test_accuracy"])

    @property
    def interval(self) -> tuple[float, float] | None:
        return prediction_interval(self.group.stats("test_accuracy"))

    @property
    def verdict(self) -> str:
        """inside | outside (the prediction interval) | untested (one seed)."""
        if self.interval is None:
            return "untested"
        low, high = self.interval
        return "inside" if low <= float(self.ref["test_accuracy"]) <= high else "outside"


def published(groups: Sequence[an.Group], registered: Mapping[str, Mapping[str, Any]] | None = None) -> list[Published]:
    """The configurations with a published figure. The figure's budget (`epochs`, `batch_size`) comes with its
    reference, else with the registered study's reference for the same run directory (study.json files written
    before references named their budget); without one it is unknown, and nothing is compared."""
    out = []
    for group in groups:
        ref = group.reference
        if not ref:
            continue
        ref = {**(registered or {}).get(group.runs[0].dir, {}), **ref}
        epochs = ref.get("epochs")
        batch = int(ref.get("batch_size") or group.setting("batch_size"))
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
        return downsampling_contrast(self.a, self.b) is not None

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
    contrast = downsampling_contrast(x, y)
    if contrast:
        return contrast
    return (x, y) if (x.macs or 0) >= (y.macs or 0) else (y, x)


def _contrasted(by_key: dict[NetKey, NetInfo], a: an.Group, b: an.Group) -> bool:
    """The two configurations' networks differ only in how they downsample."""
    net_a, net_b = by_key.get(net_key(a)), by_key.get(net_key(b))
    return net_a is not None and net_b is not None and downsampling_contrast(net_a, net_b) is not None


def arch_pairs(rankings: Sequence[an.Ranking], nets: Sequence[NetInfo]) -> list[ArchPair]:
    """Architecture pairs, grouped by dataset (the structural contrast is said once per pair), each with its
    results per optimizer: neighbours in each ranking, plus the pooling-versus-stride pair wherever both ran."""
    by_key = {n.key: n for n in nets}
    pairs: dict[tuple[str, frozenset[str]], ArchPair] = {}
    for rk in rankings:
        dataset = rk.shared["dataset"]
        duos = list(zip(rk.groups, rk.groups[1:], strict=False))
        if not any(_contrasted(by_key, x, y) for x, y in duos):
            contrasts = (d for d in itertools.combinations(rk.groups, 2) if _contrasted(by_key, *d))
            duos.extend(itertools.islice(contrasts, 1))
        for x, y in duos:
            net_x, net_y = by_key.get(net_key(x)), by_key.get(net_key(y))
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


def _lr(group: an.Group) -> float | None:
    lr = (group.runs[0].config.get("optimizer_hparams") or {}).get("lr")
    return float(lr) if isinstance(lr, (int, float)) else None


def slow_vs_usual(groups: Sequence[an.Group], defaults: Mapping[str, OptimizerDefaults]) -> list[Slow]:
    """Configurations run with an optimizer far below its usual learning rate beside the same configuration with
    another optimizer at its usual rate or above (Adadelta at Keras' 1e-3 beside Adam: the original's MNIST puzzle)."""
    out = []
    same = ("dataset", "architecture", "epochs")

    def usual(group: an.Group) -> float | None:
        found = defaults.get(group["optimizer"])
        return found.usual_lr if found else None

    for slow in groups:
        lr, slow_usual = _lr(slow), usual(slow)
        if lr is None or slow_usual is None or lr > FAR_BELOW_USUAL * slow_usual:
            continue
        for fast in groups:
            fast_lr, fast_usual = _lr(fast), usual(fast)
            at_usual = fast_lr is not None and fast_usual is not None and fast_lr >= fast_usual
            at_usual = at_usual and fast["optimizer"] != slow["optimizer"]
            if at_usual and [fast[k] for k in same] == [slow[k] for k in same]:
                improving = an.still_improving(slow.curves.mean.val_accuracy)
                out.append(Slow(slow, fast, lr, improving))
    return out


def degenerate(group: an.Group) -> bool:
    """A configuration some of whose runs learned next to nothing (results.reading.degeneracy): never "best"."""
    return any(run.degenerate for run in group.runs)


def best_per_dataset(groups: Sequence[an.Group]) -> dict[str, an.Group]:
    """The configuration with the highest mean final test accuracy on each dataset, degenerate ones left out (a
    dataset where every configuration is degenerate has no best)."""
    best = {}
    for ds in dict.fromkeys(g["dataset"] for g in groups):
        learned = [g for g in groups if g["dataset"] == ds and not degenerate(g)]
        if learned:
            best[ds] = max(learned, key=lambda g: g.stats("test_accuracy").mean)
    return best


def best_leads(groups: Sequence[an.Group]) -> list[an.Comparison]:
    """On each dataset with several configurations: the best one against the runner-up (final test accuracy)."""
    out = []
    for ds in dict.fromkeys(g["dataset"] for g in groups):
        ranked = sorted((g for g in groups if g["dataset"] == ds), key=lambda g: -g.stats("test_accuracy").mean)
        if len(ranked) > 1:
            out.append(an.compare(ranked[0], ranked[1], "test_accuracy"))
    return out


def slow_defaults(group: an.Group, defaults: Mapping[str, OptimizerDefaults]) -> bool:
    """The configuration's optimizer has a Keras default below its usual learning rate."""
    found = defaults.get(group["optimizer"])
    return bool(found and found.keras_is_slow)


def keras_defaults_matter(groups: Sequence[an.Group], defaults: Mapping[str, OptimizerDefaults]) -> bool:
    """Some configuration ran the keras preset with an optimizer whose Keras default is below its usual rate."""
    return any(g["preset"] == "keras" and slow_defaults(g, defaults) for g in groups)


def slow_defaults_ranking(
    rankings: Sequence[an.Ranking], defaults: Mapping[str, OptimizerDefaults], keras_defaults: bool
) -> an.Ranking | None:
    """The optimizer ranking where Keras' small default learning rates best explain the order (said once): an
    optimizer at its usual default first, one with a slow Keras default behind it, the most optimizers compared."""
    if not keras_defaults:
        return None
    fits = [
        rk
        for rk in rankings
        if not slow_defaults(rk.groups[0], defaults) and any(slow_defaults(g, defaults) for g in rk.groups)
    ]
    return max(fits, key=lambda rk: len(rk.groups), default=None)


@dataclass(frozen=True)
class Findings:
    """What a study's results show, computed once from its files and plugins; the templates word it."""

    study: an.Study
    groups: list[an.Group]
    seeds_of: dict[tuple[Any, ...], int]
    readers: dict[str, dict[str, Any]]
    rank: dict[tuple[str, str], list[an.Ranking]]
    nets: list[NetInfo]
    arch_pairs: list[ArchPair]
    pool_vs_stride: bool
    defaults: Mapping[str, OptimizerDefaults]
    slow_fast: list[Slow]
    explained: list[Slow]  # the comparisons the study's notes explain its published figures with
    keras_defaults: bool
    why_ranking: an.Ranking | None
    verdicts: dict[str, list[an.Group]]
    overfits: dict[str, list[Overfit]]
    gains: list[Gain]
    levers: list[an.Group]
    references: list[an.Group]
    published: list[Published]
    best_by_dataset: dict[str, an.Group]
    best_leads: list[an.Comparison]
    degenerate: list[an.Group]
    min_epochs: int = an.MIN_VERDICT_EPOCHS
    end_epochs: int = an.END_EPOCHS

    @property
    def multi_seed(self) -> bool:
        return any(n > 1 for n in self.seeds_of.values())

    def slow_defaults(self, group: an.Group) -> bool:
        return slow_defaults(group, self.defaults)


def find(
    study: an.Study,
    nets: list[NetInfo],
    readers: dict[str, dict[str, Any]],
    defaults: Mapping[str, OptimizerDefaults],
    explains: str,
    levers: list[an.Group],
    registered: Mapping[str, Mapping[str, Any]] | None = None,
) -> Findings:
    """The study's findings: rankings, architecture pairs, optimizer defaults, overfitting, published figures."""
    groups = study.groups
    rank = {(v, m): an.rankings(groups, v, m) for v in ("optimizer", "architecture", "dataset") for m in an.METRICS}
    pairs = arch_pairs(rank[("architecture", "test_accuracy")], nets)
    slow_fast = slow_vs_usual(groups, defaults)
    keras = keras_defaults_matter(groups, defaults)
    return Findings(
        study=study,
        groups=groups,
        seeds_of={g.key: len(g.runs) for g in groups},
        readers=readers,
        rank=rank,
        nets=nets,
        arch_pairs=pairs,
        pool_vs_stride=any(p.pool_vs_stride for p in pairs) or has_downsampling_contrast(nets),
        defaults=defaults,
        slow_fast=slow_fast,
        explained=[x for x in slow_fast if x.slow.reference and x.slow["dataset"] == explains],
        keras_defaults=keras,
        why_ranking=slow_defaults_ranking(rank[("optimizer", "test_accuracy")], defaults, keras),
        verdicts={v: [g for g in groups if g.fit.verdict == v] for v in an.VERDICTS},
        overfits={v: overfitting(groups, v) for v in ("strong", "mild")},
        gains=best_epoch_gains(groups),
        levers=levers,
        references=[g for g in groups if g.reference],
        published=published(groups, registered),
        best_by_dataset=best_per_dataset(groups),
        best_leads=best_leads(groups),
        degenerate=[g for g in groups if degenerate(g)],
    )
