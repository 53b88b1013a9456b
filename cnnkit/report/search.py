"""The report's "Hyperparameter search" part: typed findings computed from a search study's files, and its figures.

`search_findings(study_dir)` reads study.json's `search` (the space, sampler, pruner, metric, budget and
confirmation), trials.csv and the confirmation runs, and returns a `SearchFindings`, or None for a study without a
search. Nothing here needs the search's storage: the importance of each setting is computed by Optuna's PED-ANOVA
evaluator (`PedAnovaImportanceEvaluator`, which needs no further package; fANOVA would need scikit-learn) over the
complete trials, rebuilt from the table. `search_figures(findings, lang)` draws the optimization history and the
importances as inline SVG, labelled in the report's language. The words of the part are English gettext messages in
templates/partials/search.j2 (and the figure words below), translated in the catalogs like every other word.

The confirmation compares each tuned configuration with the baseline by their means over seeds and Welch's 95 %
interval of the difference (`cnnkit.results.stats.welch_interval`): a gain is claimed only when that interval
excludes zero on the tuned side.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from cnnkit.report.figures import STYLE as FIGURE_STYLE
from cnnkit.report.localize import capfirst
from cnnkit.results.runs import load_study, read_manifest
from cnnkit.results.stats import SeedStats, seed_stats, welch_interval
from cnnkit.results.trials import TrialRow, current_trials
from cnnkit.states import TrialState

# PED-ANOVA compares the best trials with all of them: with fewer complete trials the importances say nothing.
MIN_TRIALS_FOR_IMPORTANCE = 4
CONFIRMED_METRICS = ("test_accuracy", "test_loss")


@dataclass(frozen=True)
class SpaceDimension:
    """One searched setting: a range (`low` to `high`, on a log scale or in steps) or a choice of `labels`."""

    setting: str
    kind: str  # "range" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Importance:
    """How much of the variation of the trials' values a setting accounts for (PED-ANOVA; they sum to 1)."""

    setting: str
    importance: float


@dataclass(frozen=True)
class Confirmation:
    """A tuned configuration (trial `trial`, `rank`-th best) against the baseline on one test metric: mean and
    spread over seeds, the difference of the means (tuned minus baseline) and its Welch 95 % interval (None with
    one seed on a side). `gain`: the interval excludes zero on the tuned side (higher accuracy, lower loss);
    `loss_of_quality`: it excludes zero on the baseline's side."""

    trial: int
    rank: int
    metric: str
    tuned: SeedStats
    baseline: SeedStats
    difference: float
    interval: tuple[float, float] | None
    gain: bool
    worse: bool

    @property
    def undecided(self) -> bool:
        return not (self.gain or self.worse)


@dataclass(frozen=True)
class SearchFindings:
    """Everything the report says of a search (see the module docstring)."""

    sampler: str
    pruner: str
    seed: int
    metric: str
    direction: str
    planned: int
    budget_epochs: int | None
    budget_subset: int | None
    confirm_top: int
    confirm_seeds: int
    baseline: bool
    space: list[SpaceDimension]
    trials: list[TrialRow]
    best: TrialRow | None
    importances: list[Importance] | None
    confirmations: list[Confirmation] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(str(t.state) == state for t in self.trials)

    @property
    def complete(self) -> int:
        return self.count("complete")

    @property
    def pruned(self) -> int:
        return self.count("pruned")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def running(self) -> int:
        return self.count("running")

    @property
    def finished(self) -> int:
        return self.complete + self.pruned

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "minimize"

    @property
    def gain(self) -> bool:
        """A gain may be claimed (the Conclusions' test): the tuned accuracy's interval excludes zero, upwards."""
        return any(c.gain for c in self.confirmations if c.metric == "test_accuracy")

    def confirmation(self, metric: str) -> list[Confirmation]:
        return [c for c in self.confirmations if c.metric == metric]

    @staticmethod
    def decimals(value: float, significant: int = 3) -> int:
        """Decimals that show a sampled number to `significant` digits (0.00134, 0.284, 12.5, 250)."""
        if not value or not math.isfinite(value):
            return 0
        return max(0, significant - 1 - math.floor(math.log10(abs(value))))

    def best_settings(self) -> list[tuple[str, Any]]:
        """(setting, value) of the best trial, in the space's order."""
        if self.best is None:
            return []
        return [(d.setting, self.best.params.get(d.setting)) for d in self.space]


# ------------------------------------------------------------------------------------------------ findings
def search_findings(study_dir: Path) -> SearchFindings | None:
    """The findings of a search study's directory; None when the study is not a search."""
    record = read_manifest(Path(study_dir)).get("search")
    if not isinstance(record, dict):
        return None
    space = [_dimension(d) for d in record.get("space", []) if isinstance(d, dict)]
    _, trials = current_trials(Path(study_dir))
    direction = str(record.get("direction", "minimize"))
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    sign = 1.0 if direction == "minimize" else -1.0
    best = min(complete, key=lambda t: (sign * float(t.value or 0.0), t.number)) if complete else None
    budget, confirm = record.get("budget") or {}, record.get("confirm") or {}
    return SearchFindings(
        sampler=str(record.get("sampler")),
        pruner=str(record.get("pruner")),
        seed=int(record.get("seed") or 0),
        metric=str(record.get("metric")),
        direction=direction,
        planned=int(record.get("trials") or 0),
        budget_epochs=budget.get("epochs"),
        budget_subset=budget.get("subset"),
        confirm_top=int(confirm.get("top") or 1),
        confirm_seeds=int(confirm.get("seeds") or 1),
        baseline=bool(confirm.get("baseline")),
        space=space,
        trials=trials,
        best=best,
        importances=importances(record, complete),
        confirmations=confirmations(Path(study_dir)),
    )


def _dimension(record: Mapping[str, Any]) -> SpaceDimension:
    if record.get("kind") == "choice":
        return SpaceDimension(str(record["setting"]), "choice", labels=tuple(str(v) for v in record.get("labels", [])))
    return SpaceDimension(
        str(record["setting"]),
        "range",
        low=record.get("low"),
        high=record.get("high"),
        log=bool(record.get("log")),
        step=record.get("step"),
    )


def _label(value: Any) -> Any:
    """A choice value as Optuna saw it (the search's own labels: `flip+crop`, `none`)."""
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return "+".join(str(v) for v in value) if value else "none"
    return value


def _distribution(record: Mapping[str, Any]) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if record.get("kind") == "choice":
        return CategoricalDistribution(list(record.get("labels", [])))
    if record.get("type") == "int":
        step = int(record.get("step") or 1)
        return IntDistribution(int(record["low"]), int(record["high"]), log=bool(record.get("log")), step=step)
    return FloatDistribution(
        float(record["low"]), float(record["high"]), log=bool(record.get("log")), step=record.get("step")
    )


def importances(record: Mapping[str, Any], complete: Sequence[TrialRow]) -> list[Importance] | None:
    """Each searched setting's importance over the complete trials (Optuna's PED-ANOVA), largest first; None
    with fewer than MIN_TRIALS_FOR_IMPORTANCE complete trials or a single searched setting."""
    dims = [d for d in record.get("space", []) if isinstance(d, dict)]
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE or len(dims) < 2:
        return None
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    distributions = {str(d["setting"]): _distribution(d) for d in dims}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(direction=str(record.get("direction", "minimize")))
        for trial in complete:
            params = {name: _label(trial.params.get(name)) for name in distributions}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=trial.value))
        try:
            found = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(), normalize=True)
        except (ValueError, RuntimeError, ZeroDivisionError):
            return None
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
    return [Importance(name, float(value)) for name, value in ranked]


def confirmations(study_dir: Path) -> list[Confirmation]:
    """Each tuned configuration against the baseline, for the test accuracy and loss (none without a baseline)."""
    study = load_study(study_dir)
    by_role: dict[tuple[str, Any], list[Any]] = {}
    for run in study.runs:
        role = run.config.get("role")
        if role in ("tuned", "baseline"):
            by_role.setdefault((role, run.config.get("trial")), []).append(run)
    baseline = by_role.get(("baseline", None), [])
    if not baseline:
        return []
    found = []
    tuned_keys = sorted((key for key in by_role if key[0] == "tuned"), key=lambda k: int(k[1] or 0))
    for key in tuned_keys:
        runs = by_role[key]
        rank = int(runs[0].config.get("rank") or 1)
        for metric in CONFIRMED_METRICS:
            a = [float(r.result[metric]) for r in runs if metric in r.result]
            b = [float(r.result[metric]) for r in baseline if metric in r.result]
            if not a or not b:
                continue
            interval = welch_interval(a, b)
            difference = seed_stats(a).mean - seed_stats(b).mean
            up = metric.endswith("accuracy")
            better = interval is not None and (interval[0] > 0 if up else interval[1] < 0)
            poorer = interval is not None and (interval[1] < 0 if up else interval[0] > 0)
            found.append(
                Confirmation(
                    int(key[1]), rank, metric, seed_stats(a), seed_stats(b), difference, interval, better, poorer
                )
            )
    return found


# ------------------------------------------------------------------------------------------------ figures
STYLE: dict[str, Any] = FIGURE_STYLE  # the report's one figure style (axes.grid off changes nothing here)
COMPLETE, PRUNED, BEST = "#1f77b4", "#9a9a9a", "#d62728"


def figure_words(lang: str) -> tuple[dict[str, str], dict[str, str]]:
    """The figure words in the report's language (templates/words.toml's `search.figure`, through the catalogs) and
    the settings' names without an article (`factor_axis`)."""
    from cnnkit.report.catalog import load_text

    text = load_text(lang)
    return dict(text["search"]["figure"]), {k: str(v) for k, v in text["factor_axis"].items()}


def search_figures(findings: SearchFindings, lang: str = "en") -> dict[str, str | None]:
    """`history` (each trial's value by number, pruned ones apart, and the best so far) and `importance` (a bar per
    setting; None without importances), as inline SVG."""
    from cnnkit.report.localize import Formatter

    words, names = figure_words(lang)
    number = Formatter(lang).num
    return {
        "history": history_figure(findings, words),
        "importance": importance_figure(findings, words, number, names) if findings.importances else None,
    }


def _svg(paint: Any, size: tuple[float, float], prefix: str) -> str:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(cast(Any, STYLE)):
        fig = Figure(figsize=size)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        paint(ax)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\sxmlns:xlink="[^"]*"', "", svg)
    ids = sorted(set(re.findall(r'id="([^"]+)"', svg)), key=len, reverse=True)
    for name in ids:  # ids unique per figure, as the report inlines many
        svg = re.sub(rf'(["#(]){re.escape(name)}([")])', rf"\g<1>{prefix}-{name}\g<2>", svg)
    return svg


def history_figure(findings: SearchFindings, words: Mapping[str, str]) -> str:
    """Each trial's value by its number (complete: dots; pruned, at fewer epochs: grey crosses) and the best value
    of the complete trials so far (a step line)."""
    scored = [t for t in findings.trials if t.value is not None and math.isfinite(t.value)]
    complete = [t for t in scored if t.state is TrialState.COMPLETE]
    pruned = [t for t in scored if t.state is TrialState.PRUNED]

    def paint(ax: Any) -> None:
        if complete:
            ax.scatter(
                [t.number for t in complete],
                [t.value for t in complete],
                s=14,
                color=COMPLETE,
                label=words["complete"],
                zorder=3,
            )
        if pruned:
            ax.scatter(
                [t.number for t in pruned],
                [t.value for t in pruned],
                s=14,
                marker="x",
                color=PRUNED,
                label=words["pruned"],
                zorder=2,
            )
        best, xs, ys = None, [], []
        for t in sorted(complete, key=lambda t: t.number):
            value = float(t.value or 0.0)
            if best is None or (value < best if findings.lower_is_better else value > best):
                best = value
            xs.append(t.number)
            ys.append(best)
        if xs:
            ax.step(xs, ys, where="post", color=BEST, linewidth=1.2, label=words["best"])
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(words["trial"])
        ax.set_ylabel(capfirst(words.get(findings.metric, findings.metric)))
        if scored:
            ax.legend(loc="best", fontsize=7)

    return _svg(paint, (5.2, 2.6), "sh" + _digest(findings))


def importance_figure(
    findings: SearchFindings, words: Mapping[str, str], number: Any = None, names: Mapping[str, str] | None = None
) -> str:
    """A horizontal bar per searched setting (by `names`, the report's names of the settings), the most
    important on top, each with its value (`number` formats it in the report's language)."""
    found = list(reversed(findings.importances or []))
    number = number or (lambda x: f"{x:.2f}")

    def paint(ax: Any) -> None:
        labels = [capfirst((names or {}).get(i.setting, i.setting)) for i in found]
        ax.barh(labels, [i.importance for i in found], color=COMPLETE, height=0.6)
        for y, item in enumerate(found):
            ax.text(item.importance, y, f" {number(item.importance)}", va="center", fontsize=7)
        ax.set_xlim(0, max([i.importance for i in found] + [0.0]) * 1.2 or 1.0)
        ax.set_xlabel(words["importance"])

    return _svg(paint, (5.2, 0.5 + 0.32 * len(found)), "si" + _digest(findings))


def _digest(findings: SearchFindings) -> str:
    return hashlib.sha256(repr([(t.number, t.value) for t in findings.trials]).encode()).hexdigest()[:6]
