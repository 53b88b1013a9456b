"""The report's error analysis, one per dataset: per-class figures, the most-confused pairs, McNemar's paired tests
between trained models, the images every seed gets wrong, and calibration (no wording here).

The statistics are those of cnnkit.results.errors, computed from the predictions every run keeps; the galleries'
images are read from the data files a run names (cnnkit.data.recorded), and are left out where those are absent.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.report import analysis as an
from cnnkit.report import figures as fg
from cnnkit.report.netinfo import reader
from cnnkit.results import errors as er
from cnnkit.results.reading import Predictions

PAIRS_SHOWN = 5  # most-confused pairs per configuration
MISSED_SHOWN = 16  # images every seed gets wrong, per configuration
MISTAKES_SHOWN = 8  # most confident wrong predictions, per configuration
TABLE_CONFIGS = 3  # configurations side by side in one table (4 with seeds run off an A4 page)


@dataclass
class ConfigErrors:
    """One configuration's errors, over its seeds that kept predictions (`runs`, each with its `predictions`)."""

    group: an.Group
    runs: list[an.Run]
    predictions: list[Predictions]  # of `runs`, in their order

    @classmethod
    def of(cls, group: an.Group) -> ConfigErrors | None:
        """The configuration's seeds that kept predictions; None when none did."""
        kept = [(r, r.predictions) for r in group.runs if r.predictions is not None]
        return cls(group, [r for r, _ in kept], [p for _, p in kept]) if kept else None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.predictions[0].class_names

    @property
    def y_true(self) -> np.ndarray:
        return self.predictions[0].y_true

    @cached_property
    def stats(self) -> er.ClassStats:
        return er.class_stats([er.ClassScores.from_confusion(p.confusion) for p in self.predictions])

    @property
    def worst(self) -> int:
        """The class of the lowest mean F1."""
        return self.stats.worst("f1")[0]

    @cached_property
    def pairs(self) -> list[er.ConfusedPair]:
        return er.confused_pairs([p.confusion for p in self.predictions], PAIRS_SHOWN)

    @property
    def multi_seed(self) -> bool:
        return len(self.runs) > 1

    @cached_property
    def agreement(self) -> er.Agreement | None:
        """The seeds' agreement on the test images (None for one seed)."""
        if not self.multi_seed:
            return None
        return er.agreement(self.y_true, [p.y_pred for p in self.predictions])

    @cached_property
    def missed_predictions(self) -> list[tuple[int, ...]]:
        """For each image every seed misses (the first MISSED_SHOWN by index): the seeds' distinct predictions."""
        if self.agreement is None:
            return []
        shown = self.agreement.all_wrong[:MISSED_SHOWN]
        return [tuple(dict.fromkeys(int(p.y_pred[i]) for p in self.predictions)) for i in shown]

    @cached_property
    def probabilities(self) -> list[tuple[an.Run, np.ndarray, np.ndarray]]:
        """(run, test-set probabilities, test labels) of the seeds that kept probabilities."""
        return [
            (r, p.probabilities, p.y_true)
            for r, p in zip(self.runs, self.predictions, strict=True)
            if p.probabilities is not None
        ]

    @property
    def with_probabilities(self) -> list[an.Run]:
        return [r for r, _, _ in self.probabilities]

    @cached_property
    def calibrations(self) -> list[tuple[an.Run, er.Calibration]]:
        return [(r, er.calibration(probs, y)) for r, probs, y in self.probabilities]

    @cached_property
    def pooled_calibration(self) -> er.Calibration | None:
        """The calibration of the seeds' probabilities taken together (the reliability diagram's curve)."""
        if not self.probabilities:
            return None
        probs = np.concatenate([probs for _, probs, _ in self.probabilities])
        return er.calibration(probs, np.concatenate([y for _, _, y in self.probabilities]))

    @property
    def mistakes_run(self) -> an.Run | None:
        """The seed whose most confident mistakes the report shows: the first with probabilities."""
        return self.probabilities[0][0] if self.probabilities else None

    @cached_property
    def mistakes(self) -> list[er.ConfidentMistake]:
        if not self.probabilities:
            return []
        _, probs, y = self.probabilities[0]
        return er.confident_mistakes(probs, y, MISTAKES_SHOWN)


@dataclass(frozen=True)
class PairTest:
    """McNemar's test of one seed of configuration `a` against the same seed of `b` (they differ in `vary`)."""

    a: an.Group
    b: an.Group
    vary: str
    seed: int
    test: er.McNemar
    p_holm: float = 1.0

    @property
    def differ(self) -> bool:
        return self.p_holm < er.ALPHA

    @property
    def ahead(self) -> an.Group:
        """The configuration with more images only it gets right."""
        return self.a if self.test.only_a >= self.test.only_b else self.b


@dataclass
class DatasetErrors:
    """A dataset's error analysis: its configurations and the paired tests between those that differ in one setting."""

    dataset: str
    configs: list[ConfigErrors]
    tests: list[PairTest] = field(default_factory=list)

    @property
    def support(self) -> tuple[float, ...]:
        return self.configs[0].stats.support

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.configs[0].class_names

    @property
    def multi_seed(self) -> bool:
        return any(c.multi_seed for c in self.configs)

    @property
    def calibrated(self) -> list[ConfigErrors]:
        return [c for c in self.configs if c.with_probabilities]

    @property
    def uncalibrated(self) -> list[ConfigErrors]:
        return [c for c in self.configs if not c.with_probabilities]

    def worst_classes(self) -> list[tuple[int, list[ConfigErrors]]]:
        """(class, the configurations whose lowest mean F1 it is), in the order the classes first appear."""
        found: dict[int, list[ConfigErrors]] = {}
        for c in self.configs:
            found.setdefault(c.worst, []).append(c)
        return list(found.items())

    @property
    def seed_by_seed(self) -> bool:
        """Some configuration pair was tested on several seeds."""
        return any(len(tests) > 1 for tests in self.pairs_tested())

    def pairs_tested(self) -> list[list[PairTest]]:
        """The tests grouped by configuration pair (its seeds), in the order tested."""
        pairs: dict[tuple[int, int], list[PairTest]] = {}
        for t in self.tests:
            pairs.setdefault((id(t.a), id(t.b)), []).append(t)
        return list(pairs.values())

    @property
    def tables(self) -> list[list[ConfigErrors]]:
        """The configurations in chunks of TABLE_CONFIGS, one table each."""
        return [self.configs[i : i + TABLE_CONFIGS] for i in range(0, len(self.configs), TABLE_CONFIGS)]


@dataclass
class ErrorAnalysis:
    datasets: list[DatasetErrors]
    alpha: float = er.ALPHA

    @property
    def tests(self) -> list[PairTest]:
        return [t for d in self.datasets for t in d.tests]

    @property
    def multi_seed(self) -> bool:
        return any(d.multi_seed for d in self.datasets)

    @property
    def calibrated(self) -> bool:
        return any(d.calibrated for d in self.datasets)

    @property
    def first_tested(self) -> DatasetErrors | None:
        """The first dataset with a paired test (where the report explains them)."""
        return next((d for d in self.datasets if d.tests), None)

    @property
    def one_seed_tests(self) -> bool:
        """Every configuration tested has a single seed: the tests say nothing of the configurations."""
        return all(not t.a.multi_seed and not t.b.multi_seed for t in self.tests)


def one_setting_apart(a: an.Group, b: an.Group) -> str | None:
    """The one setting two configurations differ in, or None when they differ in none or in several."""
    differ = [k for k, x, y in zip(an.CONFIG_KEYS, a.key, b.key, strict=True) if x != y]
    return differ[0] if len(differ) == 1 else None


def _seed_pairs(a: ConfigErrors, b: ConfigErrors) -> list[tuple[int, Predictions, Predictions]]:
    """Seed k of `a` with seed k of `b`; configurations without a common seed pair in order."""
    xs = [(r.get("seed"), p) for r, p in zip(a.runs, a.predictions, strict=True)]
    ys = [(r.get("seed"), p) for r, p in zip(b.runs, b.predictions, strict=True)]
    by_seed = dict(ys)
    common = [(seed, p, by_seed[seed]) for seed, p in xs if seed in by_seed]
    return common or [(x[0], x[1], y[1]) for x, y in zip(xs, ys, strict=False)]


def paired_tests(configs: Sequence[ConfigErrors]) -> list[PairTest]:
    """McNemar's test, seed by seed, of every two configurations of a dataset that differ in one setting and
    predicted the same test labels (Holm's correction is applied over the whole report, in `find_errors`)."""
    tests = []
    for x, y in itertools.combinations(configs, 2):
        vary = one_setting_apart(x.group, y.group)
        if vary is None:
            continue
        for seed, pa, pb in _seed_pairs(x, y):
            if not np.array_equal(pa.y_true, pb.y_true):
                continue
            tests.append(PairTest(x.group, y.group, vary, seed, er.mcnemar(pa.y_true, pa.y_pred, pb.y_pred)))
    return tests


def find_errors(groups: Sequence[an.Group]) -> ErrorAnalysis:
    """The error analysis of a study's configurations that kept predictions, by dataset in order of appearance."""
    by_dataset: dict[str, list[ConfigErrors]] = {}
    for g in groups:
        config = ConfigErrors.of(g)
        if config is not None:
            by_dataset.setdefault(str(g["dataset"]), []).append(config)
    datasets = [DatasetErrors(name, configs, paired_tests(configs)) for name, configs in by_dataset.items()]
    tests = [t for d in datasets for t in d.tests]
    adjusted = iter(er.holm([t.test.p for t in tests]))
    for d in datasets:
        d.tests = [PairTest(t.a, t.b, t.vary, t.seed, t.test, next(adjusted)) for t in d.tests]
    return ErrorAnalysis(datasets)


# ----------------------------------------------------------------------------------------------- shown
@dataclass
class ShownDataset:
    """A dataset's error analysis as the template shows it: class names in the report's language, figures, tiles."""

    errors: DatasetErrors
    names: list[str]
    reliability: str | None
    missed: dict[int, list[fg.Tile] | None]  # by configuration index: None when the images are not at hand
    mistakes: dict[int, list[fg.Tile] | None]


def _test_images(dataset: str, configs: Sequence[ConfigErrors], wanted: set[int], registries: Any) -> dict[int, Any]:
    """Test images by index, read from the data files the first run names; {} when they are not at hand."""
    if not wanted or registries is None or dataset not in getattr(registries, "datasets", ()):
        return {}
    from cnnkit.data.formats import default_data_dir
    from cnnkit.data.recorded import recorded_test_images
    from cnnkit.errors import CnnkitError

    first = configs[0]
    try:
        module = registries.datasets.get(dataset)
        spec, sources = module.spec, module.sources
    except (CnnkitError, AttributeError):
        return {}
    order = sorted(wanted)
    record = first.runs[0].config.get("data") or {}
    images = recorded_test_images(spec, sources, Path(default_data_dir()), record, first.y_true, order)
    return {} if images is None else dict(zip(order, images, strict=True))


def shown_datasets(
    analysis: ErrorAnalysis, text: dict[str, Any], lang: str, registries: Any, prose: Any
) -> list[ShownDataset]:
    """Every dataset's error analysis with what the template draws; `prose` names the configurations."""
    out = []
    for d_index, d in enumerate(analysis.datasets):
        names = reader(registries, "datasets", d.dataset).classes_in(lang, d.class_names) or list(d.class_names)
        wanted = {int(i) for c in d.configs if c.agreement for i in c.agreement.all_wrong[:MISSED_SHOWN]}
        wanted |= {m.index for c in d.configs for m in c.mistakes}
        images = _test_images(d.dataset, d.configs, wanted, registries)
        missed: dict[int, list[fg.Tile] | None] = {}
        mistakes: dict[int, list[fg.Tile] | None] = {}
        for i, c in enumerate(d.configs):
            y_true = c.y_true
            if c.agreement is not None and len(c.agreement.all_wrong):
                shown = [int(k) for k in c.agreement.all_wrong[:MISSED_SHOWN]]
                missed[i] = (
                    [fg.Tile(fg.png_data_uri(images[k]), names[int(y_true[k])], "/".join(names[p] for p in preds))
                     for k, preds in zip(shown, c.missed_predictions, strict=True)]
                    if all(k in images for k in shown)
                    else None
                )  # fmt: skip
            if c.mistakes:
                mistakes[i] = (
                    [fg.Tile(fg.png_data_uri(images[m.index]), names[m.true], names[m.predicted],
                          prose.fmt.pct(m.confidence)) for m in c.mistakes]
                    if all(m.index in images for m in c.mistakes)
                    else None
                )  # fmt: skip
        curves = [
            (prose.label(c.group, True, dataset=False), cal.confidence, cal.accuracy, cal.count)
            for c in d.calibrated
            if (cal := c.pooled_calibration) is not None
        ]
        reliability = fg.reliability_diagram(curves, text["errors"]["figure"], f"rd{d_index}") if curves else None
        out.append(ShownDataset(d, names, reliability, missed, mistakes))
    return out


def context(groups: Sequence[an.Group], text: dict[str, Any], lang: str, registries: Any, prose: Any) -> dict[str, Any]:
    """What templates/partials/errors.j2 needs: the analysis and, per dataset, what it shows."""
    analysis = find_errors(groups)
    return {"analysis": analysis, "datasets": shown_datasets(analysis, text, lang, registries, prose)}
