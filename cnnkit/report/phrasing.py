"""What the templates format: names, labels, numbers with their intervals, and phrases composed from findings.

`Prose` is the one object the templates call (`prose.label(g)`, `prose.ci(g)`, `prose.overfit_summary()`); it
holds no words of its own: every word comes from the report's catalog (`text`, cnnkit.report.catalog).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import Any

from markupsafe import Markup, escape

from cnnkit.nets.presets import WEIGHT_DECAY_MODE
from cnnkit.report import analysis as an
from cnnkit.report import factors as fc
from cnnkit.report.catalog import Plural
from cnnkit.report.discussion import Findings, Published, Slow
from cnnkit.report.localize import Formatter, capfirst
from cnnkit.report.netinfo import NetInfo, reader
from cnnkit.training.config import LEVERS
from cnnkit.training.values import toml_inline

REGISTRY_OF = {s.name: s.registry for s in LEVERS if s.registry}  # lever settings whose values are plugins

# How config.json names a CPU device: "CPU x86_64 (2 threads)" (older records also say "(1 threads)").
CPU_DEVICE = re.compile(r"CPU(?P<machine> \S+)? \((?P<threads>\d+) threads?\)")
FAR_BEHIND = 0.05  # an optimizer far below its usual rate this far (5 points) behind points at its learning rate


def fill(template: str, **words: Any) -> Markup:
    """A translated sentence with its {placeholders} filled; plain values are escaped, Markup kept."""
    return Markup(escape(template)).format(**words)


def fmt_shape(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def value_formatter(fmt: Formatter) -> Callable[[Any], str]:
    """A config value: numbers in the report's locale, dicts as k=v lists, lists comma-separated."""

    def value(x: Any) -> str:
        if isinstance(x, dict):
            return "; ".join(f"{k}={value(v)}" for k, v in x.items())
        if isinstance(x, bool) or x is None:
            return "—" if x is None else str(x).lower()
        if isinstance(x, (int, float)):
            return fmt.value(x)
        if isinstance(x, list):
            return "(" + fmt.list_separator.join(value(v) for v in x) + ")"
        return str(x)

    return value


def _gap(x: Slow) -> float:
    return x.fast.stats("test_accuracy").mean - x.slow.stats("test_accuracy").mean


class Prose:
    """The report's phrasing in one language, for one study's findings.

    `tail_keys`: the settings, beyond dataset, network and optimizer, that tell the study's configurations apart
    (an lr grid's lr, the levers); a configuration's label names them.
    """

    def __init__(
        self,
        text: dict[str, Any],
        fmt: Formatter,
        registries: Any,
        lang: str,
        findings: Findings,
        tail_keys: Sequence[str] = (),
    ) -> None:
        self.text, self.fmt, self.registries, self.lang = text, fmt, registries, lang
        self.f = findings
        self.tail_keys = tuple(tail_keys)
        self.value = value_formatter(fmt)
        self.words = {**text["discussion"], **text["conclusions"], **text["results"]}

    # ------------------------------------------------------------------------------------------- names
    def nm(self, kind: str, key: Any) -> str:
        """The reader's name of a dataset, architecture or optimizer (its plugin's common noun, short name or
        display name, else the registry name), or of a verdict (the report's own words)."""
        base = kind.removesuffix("_short")
        if base in ("dataset", "architecture", "optimizer"):
            info = reader(self.registries, f"{base}s", str(key))
            own = info.short_in(self.lang) if kind != base else info.common_in(self.lang)
            return own or info.name_or(str(key), self.lang)
        return str(self.text["names"].get(kind, {}).get(str(key), key))

    def dataset_names(self, keys: Iterable[str]) -> list[str]:
        return [self.nm("dataset", key) for key in keys]

    def the(self, kind: str, key: Any) -> str:
        """A network as a noun phrase: a plugin's common noun takes the language's article ("the pooling CNN
        (net_1)"), as does a lower-case name; a capitalised display name is a proper name ("LeNet-5")."""
        name = self.nm(kind, key)
        common = bool(reader(self.registries, f"{kind}s", str(key)).common_in(self.lang))
        return f"{self.text['grammar']['article']} {name}" if common or not name[:1].isupper() else name

    def setting_word(self, key: str, x: Any) -> str:
        """A run setting as the report names it: "lr 0.01", "dropout 0.25", "augmentation flip+crop"; a table
        (`arch`) in one line, as a study file writes it."""
        if isinstance(x, dict):
            shown = toml_inline(x)
        elif key in REGISTRY_OF:  # a plugin's augmentations or schedule, by their short names in the language
            shown = "+".join(self.plugin_names(key, x, short=True))
        else:
            shown = self.value(x)
        return str(self.text["setting"].get(key, key + " {value}")).format(value=shown)

    def tail(self, run: an.Run | an.Group) -> list[str]:
        """What sets a configuration apart beyond dataset, network and optimizer; "baseline" for the one
        without any of the levers its study varies. A search's confirmation names its configurations by their
        role ("baseline", "tuned (trial 29)"): the searched values are the search part's to give."""
        role = self.role(run)
        return [role] if role else self.settings_tail(run)

    def settings_tail(self, run: an.Run | an.Group) -> list[str]:
        """What sets a configuration apart by its settings' values, whatever its role (the setup table's column)."""
        parts = [
            self.setting_word(k, run.setting(k))
            for k in self.tail_keys
            if k not in an.LEVER_KEYS or run.setting(k) != an.LEVER_DEFAULTS[k]
        ]
        if not parts and any(k in an.LEVER_KEYS for k in self.tail_keys):
            parts.append(self.text["setting"]["baseline"])
        return parts

    def role(self, run: an.Run | an.Group, noun: bool = False) -> str | None:
        """A search confirmation's configuration by its role in study.json ("tuned (trial 29)"; as a `noun` phrase
        "the tuned configuration (trial 29)"); None elsewhere."""
        config = (run.runs[0] if isinstance(run, an.Group) else run).config
        role = config.get("role")
        if role not in ("baseline", "tuned"):
            return None
        words = self.text["setting"][f"{role}_np" if noun else role]
        return str(words).format(trial=config.get("trial"))

    def base_label(self, run: an.Run | an.Group, short: bool = False, sep: str = " · ", dataset: bool = True) -> str:
        kinds = ("dataset", "architecture_short" if short else "architecture", "optimizer")[0 if dataset else 1 :]
        return sep.join(self.nm(k, run[k.removesuffix("_short")]) for k in kinds)

    def label(self, run: an.Run | an.Group, short: bool = False, sep: str = " · ", dataset: bool = True) -> str:
        """A run or configuration by its dataset (unless `dataset` is false), network, optimizer and what else
        sets it apart; a run of a configuration with several seeds adds its seed."""
        parts = [self.base_label(run, short, sep, dataset), *self.tail(run)]
        if isinstance(run, an.Run) and self.f.seeds_of.get(run.config_key, 1) > 1:
            parts.append(f"{self.text['cols']['seed'].lower()} {run['seed']}")
        return sep.join(parts)

    def plugin_names(self, key: str, x: Any, short: bool = False) -> list[str]:
        """The names a lever's plugins give its values in the report's language (ReaderInfo: the short name in
        labels, else the display name), their registry names where a plugin gives none."""
        names = x if isinstance(x, (list, tuple)) else [x]
        infos = [(str(n), reader(self.registries, REGISTRY_OF[key], str(n))) for n in names]
        if short:
            return [info.short_in(self.lang) or n for n, info in infos]
        return [info.name_or(n, self.lang) for n, info in infos]

    def net_name(self, item: NetInfo | an.Run | an.Group) -> str:
        """A network as a noun phrase ("the pooling CNN (net_1)"), with its own `arch` table, in one line, where
        the run gave one."""
        if isinstance(item, NetInfo):
            architecture, arch = item.architecture, item.arch
        else:
            architecture, arch = item["architecture"], item.setting("arch")
        name = self.the("architecture", architecture)
        return f"{name} {toml_inline(arch)}" if arch else name

    def net_names(self, networks: Any, rows: Sequence[Any] | None = None) -> list[str]:
        """The networks of a comparison (or the given rows of it), by `net_name`."""
        return [self.net_name(r.group) for r in (networks.rows if rows is None else rows)]

    def context_label(self, group: an.Group) -> str:
        """What a network comparison shares: dataset, optimizer and the training levers turned on."""
        levers = [self.setting_word(k, group.setting(k)) for k in fc.levers_of(group)]
        return " · ".join([self.nm("dataset", group["dataset"]), self.nm("optimizer", group["optimizer"]), *levers])

    def times(self, ratio: float | None) -> str:
        """A cost ratio against the reference network: "1.53 times" ("—" when a side was not measured)."""
        return "—" if ratio is None else fill(self.words["times"], x=self.fmt.num(ratio, 2))

    def labels(self, runs: Iterable[an.Run | an.Group]) -> list[str]:
        """Configurations in running text: by what sets them apart where the tables' labels have introduced them
        (a study of settings: "augmentation flip+crop", "all 4 levers"); a run by its full label and seed."""
        return [self._in_text(r) if isinstance(r, an.Group) and self.tail_keys else self.label(r, True) for r in runs]

    def _in_text(self, group: an.Group) -> str:
        """A configuration as a sentence's subject: "the baseline", "the tuned configuration (trial 29)"."""
        short = self.role(group, noun=True) or self.short_label(group)
        return str(self.text["setting"]["baseline_np"]) if short == self.text["setting"]["baseline"] else short

    def short_label(self, group: an.Group, legend: bool = False) -> str:
        """A configuration by what sets it apart in its study (its full label when nothing does); outside a
        `legend` (the tables that name each setting), the one that turns on every lever its study tries (three or
        more) is "all N levers"."""
        levers = fc.levers_of(group)
        if (
            not legend
            and len(levers) >= 3
            and set(levers) == self.levers_tried
            and set(self.tail_keys) <= set(an.LEVER_KEYS)
        ):
            return self.plural(self.text["plurals"]["all_levers"], len(levers))
        return " · ".join(self.tail(group)) or self.label(group, True)

    @cached_property
    def levers_tried(self) -> set[str]:
        """Every lever some configuration of the study turns on."""
        return {k for g in self.f.groups for k in fc.levers_of(g)}

    def names_of(self, kind: str) -> list[str]:
        return list(dict.fromkeys(self.nm(kind, r[kind]) for r in self.f.study.runs))

    def cited(self, kind: str) -> list[str]:
        """Names of the study's datasets or architectures, each with its in-text citation where its plugin gives one."""
        out = []
        for name, info in self.f.readers[kind].items():
            shown = self.nm(kind, name)
            if info.cite_as and shown.endswith(")"):  # no nested parentheses: "strided CNN (net_2; Springenberg...)"
                shown = f"{shown[:-1]}; {info.cite_as})"
            elif info.cite_as:
                shown = f"{shown} ({info.cite_as})"
            out.append(shown)
        return out

    # ------------------------------------------------------------------------------------------- numbers
    def join(self, items: Iterable[Any], numbers: bool = False) -> Markup:
        """'a', 'a and b', 'a, b and c'; items are escaped unless already Markup. Items that are or start with
        numbers are separated as the locale separates numbers ("0,001; 0,01 y 0,1" where the decimal mark is a
        comma)."""
        parts = [escape(i) for i in items]
        if len(parts) < 2:
            return parts[0] if parts else escape(self.text["meta"]["none"])
        sep = Markup(escape(self.fmt.list_separator if numbers else ", "))
        return sep.join(parts[:-1]) + Markup(" ") + escape(self.text["meta"]["and"]) + Markup(" ") + parts[-1]

    def plural(self, message: Plural, n: int, **values: Any) -> Markup:
        """A catalog sentence whose wording depends on the count `n` (`%(num)s` is the count)."""
        return Markup(escape(message.choose(n))) % {"num": self.fmt.int(n), **values}

    def epochs(self, n: int) -> Markup:
        return self.plural(self.text["plurals"]["epochs"], n)

    def metric_fmt(self, metric: str) -> Callable[[float], str]:
        return self.fmt.pct if "accuracy" in metric else self.fmt.loss

    def spread(self, x: float, metric: str) -> str:
        """A spread (sd, half-width, difference) of a metric: points for accuracies, plain for losses."""
        return self.fmt.pp(x) if "accuracy" in metric else self.fmt.loss(x)

    def rel(self, x: float) -> str:
        return self.fmt.rel(x)

    def rise(self, fit: an.Fit) -> str:
        """The validation loss's rise at the end above its minimum: absolute and relative; "0" when none."""
        if fit.val_loss_rise <= 0:
            return self.fmt.num(0, 0)
        return f"{self.fmt.loss(fit.val_loss_rise)} ({self.fmt.rel(fit.val_loss_rise_rel)})"

    def signed_pp(self, x: float) -> str:
        return f"{self.fmt.num(100 * x, signed=True)}\xa0pp"

    def ci(self, group: an.Group, metric: str = "test_accuracy") -> str:
        """A configuration's mean with its 95 % half-width ("90.10% ± 1.20 pp"); one seed: its value."""
        s = group.stats(metric)
        mean = self.metric_fmt(metric)(s.mean)
        return mean if s.half_width is None else f"{mean} ± {self.spread(s.half_width, metric)}"

    def interval(self, low: float, high: float, metric: str) -> str:
        """A 95 % interval as "88.90% to 91.30%" (differences: "+0.50 pp to +3.70 pp")."""
        num = self.metric_fmt(metric)
        return fill(self.text["stats"]["interval"], low=num(low), high=num(high))

    def diff_interval(self, c: an.Comparison) -> str:
        """The Welch interval of a difference of means, signed: "+0.50 pp to +3.70 pp"."""
        assert c.interval is not None
        sign = 1 if c.diff >= 0 else -1  # the interval of |diff|: the same side as the difference itself
        low, high = sorted((sign * c.interval[0], sign * c.interval[1]))
        if "accuracy" in c.metric:
            return fill(self.text["stats"]["interval"], low=self.signed_pp(low), high=self.signed_pp(high))
        return fill(self.text["stats"]["interval"], low=self.fmt.num(low, 4, True), high=self.fmt.num(high, 4, True))

    def ranked(self, rk: an.Ranking) -> str:
        return self.join(f"{self.nm(rk.vary, g[rk.vary])} ({self.ci(g, rk.metric)})" for g in rk.groups)

    def epoch_time(self, seconds: Sequence[float]) -> str:
        if not seconds:
            return "—"
        if len(seconds) < 2:
            return self.fmt.seconds(seconds[0], 2)
        return f"{self.fmt.seconds(statistics.mean(seconds), 2)} ± {self.fmt.seconds(statistics.stdev(seconds), 2)}"

    # ------------------------------------------------------------------------------------------- records
    def device(self, recorded: str | None) -> str:
        """The device a run recorded, in the report's language: "CPU x86_64, 1 thread"; a GPU's name as it is."""
        found = CPU_DEVICE.fullmatch(recorded or "")
        if not found:
            return recorded or "—"
        threads = self.plural(self.text["plurals"]["threads"], int(found["threads"]))
        return f"CPU{found['machine'] or ''}, {threads}"

    def config_rows(self, run: an.Run, keys: Sequence[str], seeds: Sequence[int] = ()) -> list[tuple[str, Any]]:
        """(setting, value) rows of a run's config.json; `seeds`, when several, stand for the run's own seed."""
        shown = {"device": self.device(run.config.get("device")), **({"seed": list(seeds)} if len(seeds) > 1 else {})}
        return [(k, shown.get(k, run.config[k])) for k in keys if k in run.config]

    @staticmethod
    def vary(variants: str | Sequence[str], i: int) -> str:
        """The i-th wording of a sentence that recurs (a careful author does not repeat one pattern)."""
        return variants if isinstance(variants, str) else variants[i % len(variants)]

    @staticmethod
    def data_files(data: dict[str, Any]) -> list[tuple[str, str]]:
        """(file name, SHA-256 or '') of a dataset's files; old records give the source's base name only."""
        files = data.get("files")
        if files:
            return [(str(f.get("name", "")), str(f.get("sha256", ""))) for f in files]
        source = str(data.get("source") or "")
        return [(source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1], "")] if source else []

    def published_for(self, group: an.Group) -> Published | None:
        return next((p for p in self.f.published if p.group is group), None)

    def slow_defaults(self, group: an.Group) -> bool:
        return self.f.slow_defaults(group)

    # ------------------------------------------------------------------------------------------- phrases
    def opt_leads(self, rankings: Sequence[an.Ranking]) -> list[str]:
        return [
            fill(self.text["abstract"]["opt_item"], optimizer=self.nm("optimizer", g["optimizer"]),
                 dataset=self.nm("dataset", g["dataset"]), arch=self.nm("architecture_short", g["architecture"]),
                 acc=self.ci(g))
            for g in (rk.groups[0] for rk in rankings)
        ]  # fmt: skip

    def arch_items(self, pair: Any) -> list[str]:
        """ "with Adam, the pooling CNN (net_1) 98.74% and the strided CNN (net_2) 98.72%": a pair's figures per
        optimizer, in the pair's own order (a fixed order, not a ranking)."""
        out: list[str] = []
        for c in pair.results:
            by_arch = {g["architecture"]: g for g in (c.ahead, c.behind)}
            a, b = by_arch.get(pair.a.architecture), by_arch.get(pair.b.architecture)
            if a is None or b is None:
                continue
            out.append(fill(self.text["conclusions"]["arch_item"], optimizer=self.nm("optimizer", a["optimizer"]),
                            a=self.the("architecture", a["architecture"]), acc_a=self.ci(a),
                            b=self.the("architecture", b["architecture"]), acc_b=self.ci(b)))  # fmt: skip
        return out

    def gain_items(self, gains: Sequence[Any]) -> list[str]:
        return [
            fill(self.words["gain_item"], run=run, gain=self.fmt.pp(g.gain))
            for g, run in zip(gains, self.labels(g.group for g in gains), strict=True)
        ]

    def agree(self, group: an.Group, always: bool = True) -> Markup:
        """The count "(2 of 3 seeds agree)" after a configuration's verdict; nothing for one seed (nor, unless
        `always`, when every seed agrees)."""
        if not group.multi_seed or (not always and group.agree == group.n):
            return Markup("")
        agreeing = self.plural(self.text["plurals"]["seeds_agree"], group.agree, total=group.n)
        return Markup(" (") + agreeing + Markup(")")

    def kinds_sentence(self, pair: Any, names: dict[str, str]) -> str:
        only_a, only_b, words = pair.only_a, pair.only_b, self.words
        if only_a and only_b:
            return capfirst(fill(words["kinds_both"], kinds_a=self.join(only_a), kinds_b=self.join(only_b), **names))
        if only_a or only_b:
            who = names["a"] if only_a else names["b"]
            return capfirst(fill(words["kinds_one"], who=who, kinds=self.join(only_a or only_b)))
        return fill(words["kinds_same"], kinds=self.join(pair.a.kinds))

    def published_budgets(self, items: Sequence[Published]) -> str:
        per_dataset = {p.group["dataset"]: p.epochs for p in items}
        return self.join(
            fill(self.words["budget_item"], epochs=self.epochs(e or 0), dataset=self.nm("dataset", d))
            for d, e in per_dataset.items()
        )

    def slow_items(self, items: Sequence[Slow]) -> list[str]:
        return [
            fill(self.words["puzzle_item"], arch=self.the("architecture", x.slow["architecture"]),
                 lr=self.fmt.value(x.lr), epochs=self.epochs(x.slow["epochs"]),
                 acc_slow=self.fmt.pct(x.slow.stats("test_accuracy").mean),
                 acc_fast=self.fmt.pct(x.fast.stats("test_accuracy").mean))
            for x in items
        ]  # fmt: skip

    def overfit_summary(self) -> Markup:
        """One line: which runs overfit (from which epoch, with the evidence), which do not, which cannot tell yet."""
        words, verdicts, parts = self.words, self.f.verdicts, []
        strong = self.f.overfits["strong"]
        items = [
            fill(words["overfit_item"], run=run + self.agree(o.group, False), since=o.since,
                 rise=self.fmt.rel(o.rise_rel), gap=self.fmt.pp(o.acc_gap))
            for o, run in zip(strong, self.labels(o.group for o in strong), strict=True)
        ]  # fmt: skip
        if items:
            parts.append(fill(words["overfit_strong"], runs=self.join(items)))
        for verdict in ("mild", "none", "too_early"):
            if verdicts[verdict]:
                runs = self.join(
                    run + self.agree(g, False)
                    for g, run in zip(verdicts[verdict], self.labels(verdicts[verdict]), strict=True)
                )
                parts.append(fill(words[f"overfit_{verdict}"], runs=runs, min=self.f.min_epochs))
        return fill(words["overfit_lead"], parts=capfirst(Markup("; ").join(parts)))

    def opt_why(self, rk: an.Ranking) -> Markup:
        """Why the optimizers with slow Keras defaults trail the one at its usual rate."""
        slow = [self.nm("optimizer", g["optimizer"]) for g in rk.groups[1:] if self.f.slow_defaults(g)]
        return self.plural(
            self.words["opt_why"], len(slow), slow=self.join(slow), epochs=self.epochs(rk.groups[0]["epochs"])
        )

    def next_steps(self) -> list[str]:
        words, steps = self.words, []
        if any(x.improving or _gap(x) > FAR_BEHIND for x in self.f.slow_fast):
            steps.append(words["next_lr"])
        strong = self.f.overfits["strong"]
        if strong:
            steps.append(words["next_early"])
        if strong and not self.f.levers:  # a study that tried the levers has its answer in the Discussion
            datasets = self.join(dict.fromkeys(self.nm("dataset", o.group["dataset"]) for o in strong))
            steps.append(fill(words["next_regularize"], datasets=datasets))
        if self.f.verdicts["too_early"]:
            steps.append(fill(words["next_longer"], min=self.f.min_epochs))
        if any(r.get("subset") for r in self.f.study.runs):
            steps.append(words["next_full_set"])
        if not self.f.multi_seed and len(self.f.groups) > 1:
            steps.append(words["next_seeds"])
        if self.still_falling():
            runs = self.join(self.short_label(g) for g in self.still_falling())
            steps.insert(
                1 if steps and steps[0] is words["next_lr"] else 0, fill(words["next_train_longer"], runs=runs)
            )
        return steps

    def still_falling(self) -> list[an.Group]:
        """Configurations that do not overfit strongly and whose validation loss was lowest in their last epochs
        or whose validation accuracy still rose (those run far below their optimizer's rate aside)."""
        slow = [x.slow for x in self.f.slow_fast]
        return [
            g
            for g in self.f.groups
            if g.fit.verdict in ("none", "mild")
            and not any(s is g for s in slow)
            and (
                g.fit.best_epoch > g.curves.mean.epochs - g.fit.end_epochs
                or an.still_improving(g.curves.mean.val_accuracy)
            )
        ]

    def short_labels(self, groups: Iterable[an.Group]) -> list[str]:
        """Configurations by what sets them apart (their full labels where nothing does)."""
        return [self.short_label(g) if self.tail_keys else self.label(g, True) for g in groups]

    # ------------------------------------------------------------------------------------------- factors
    def factor_name(self, key: str) -> str:
        return str(self.text["factor"].get(key, key))

    @staticmethod
    def breakable(text: str) -> Markup:
        """A value joined by "+" ("flip+crop+cutout") that a narrow table cell may break after each "+"."""
        return Markup("+<wbr>").join(escape(part) for part in str(text).split("+"))

    def setting_name(self, key: str) -> str:
        """A setting's name without an article, as a table header gives it ("learning rate")."""
        return str(self.text["factor_axis"].get(key) or self.factor_name(key))

    def factor_value_text(self, factor: Any, group: an.Group) -> str:
        return self.level_text(factor.key, factor.values[factor.groups.index(group)])

    def level_text(self, key: str, x: Any) -> str:
        """One value of a factor: a name, "flip+crop", a number in the report's locale, "none"."""
        if key in ("dataset", "architecture", "optimizer"):
            return self.nm(key, x)
        if x is None or x == ():
            return self.text["meta"]["none"]
        if key in REGISTRY_OF:
            return "+".join(self.plugin_names(key, x, short=True))
        return "+".join(map(str, x)) if isinstance(x, (list, tuple)) else self.value(x)

    # ------------------------------------------------------------------------------------------- crossed grids
    def grid_items(self, grid: Any) -> list[str]:
        """ "the learning rate (0.001 and 0.01)" for each factor of a grid."""
        return [
            fill(self.words["grid_item"], factor=self.factor_name(e.key),
                 values=self.join((self.level_text(e.key, v) for v in e.values), True))
            for e in grid.effects
        ]  # fmt: skip

    def grid_factors(self, grid: Any) -> Markup:
        return self.join(self.factor_name(k) for k in grid.keys)

    def grid_others(self, grid: Any, effect: Any) -> Markup:
        return self.join(self.factor_name(k) for k in grid.others(effect))

    def effect_items(self, effect: Any) -> list[str]:
        """ "0.001: 70.10%" for each value of a factor: its mean over the other factors' combinations."""
        return [
            fill(self.words["factor_item"], value=self.level_text(effect.key, v), acc=self.fmt.pct(mean))
            for v, mean in zip(effect.values, effect.means, strict=True)
        ]

    def effect_verdict(self, grid: Any, effect: Any) -> Markup:
        """The factor's best value against the runner-up: "did better" only when the interval excludes zero."""
        words = {
            "best": self.level_text(effect.key, effect.best), "runner": self.level_text(effect.key, effect.runner_up),
            "factor": self.factor_name(effect.key), "others": self.grid_others(grid, effect),
            "diff": self.signed_pp(effect.diff),
        }  # fmt: skip
        if effect.interval is not None:
            low, high = effect.interval
            words["interval"] = fill(self.text["stats"]["interval"], low=self.signed_pp(low), high=self.signed_pp(high))
        return Markup(capfirst(fill(self.words[f"grid_{effect.status}"], **words)))

    def factor_at(self, factor: Any, group: an.Group) -> Markup:
        """A configuration by its factor's value, to open a sentence with: "the learning rate at 1"."""
        return fill(
            self.words["factor_at"], factor=self.factor_name(factor.key), value=self.factor_value_text(factor, group)
        )

    def factor_values(self, factor: Any) -> list[str]:
        return [self.factor_value_text(factor, g) for g in factor.groups]

    def factor_items(self, factor: Any) -> list[str]:
        """ "0.001: 87.20% ± 0.40 pp" for each value of the factor, in order."""
        return [
            fill(self.words["factor_item"], value=self.factor_value_text(factor, g), acc=self.ci(g))
            for g in factor.groups
        ]

    def published_items(self, groups: Sequence[an.Group]) -> list[str]:
        """ "87.35% at lr 0.001 (original assignment (Keras))" for configurations with a published figure."""
        return [
            fill(self.words["published_item"], acc=self.fmt.pct(g.reference_accuracy), setting=self.short_label(g))
            for g in groups
        ]

    def reference_items(self, groups: Sequence[an.Group]) -> list[str]:
        """ "87.35% published at lr 0.001, 86.90% ± 0.50 pp here" for configurations with a published figure."""
        return [
            fill(self.words["reference_item"], ref=self.fmt.pct(g.reference_accuracy), setting=self.short_label(g),
                 acc=self.ci(g), diff=self.signed_pp(g.stats("test_accuracy").mean - g.reference_accuracy))
            for g in groups
        ]  # fmt: skip

    def lever_items(self, group: an.Group) -> list[Markup]:
        """The levers a configuration used, in the schema's order, each in its catalog words (`levers.<methods>`):
        `{value}` is its value (a plugin's augmentations and schedule by their ReaderInfo names), `{mode}` how the
        preset applies weight decay (as config.json's `levers` records it), `{where}` where early-stopped seeds
        stopped."""
        lv = self.text["levers"]
        recorded = group.runs[0].config.get("levers") or {}
        stopped = [e for e in group.stopped if e is not None]
        where = (
            fill(lv["stopped"], epochs=self.join(map(str, stopped)), planned=group["epochs"])
            if stopped
            else lv["not_stopped"]
        )
        items = []
        for setting in LEVERS:
            x = group.setting(setting.name)
            if not x or setting.methods not in lv:
                continue
            if setting.registry:  # a plugin's lever: the reader's name of each (ReaderInfo), else its registry name
                shown: Any = self.join(self.plugin_names(setting.name, x))
            else:
                shown = self.value(x)
            mode = recorded.get(f"{setting.name}_mode") or WEIGHT_DECAY_MODE.get(str(group["preset"]), "")
            items.append(fill(lv[setting.methods], value=shown, mode=lv.get(f"mode_{mode}", mode), where=where))
        return items

    def seeds_note(self, group: an.Group) -> str:
        """After a configuration's name in a caption: over how many seeds its curves are averaged."""
        if not self.f.multi_seed:
            return ""
        if not group.multi_seed:
            return self.words["one_seed_note"]
        return fill(self.words["seeds_note"], n=group.n)

    def curves_ref(self, group: an.Group) -> Markup:
        """A link to a configuration's learning-curve figure; its number ({n}) is filled in once the whole report
        is laid out (render.with_figure_numbers), as the captions number the figures in document order."""
        index = next(i for i, g in enumerate(self.f.groups) if g is group)
        return Markup('<a class="figref" href="#curves-{}">{}</a>').format(index, self.words["its_curves"])

    def row_names(self, rows: Sequence[Any]) -> list[str]:
        return [self.short_label(r.group) for r in rows]

    def lever_names(self, ablation: Any) -> list[str]:
        """The levers tried one at a time."""
        return self.row_names([r for r in ablation.rows if len(r.levers) == 1])

    # ------------------------------------------------------------------------------------------- published
    def reproduction_verdict(self, items: Sequence[Published]) -> Markup:
        """One sentence judging the published figures together: how many lie inside their prediction intervals,
        or, with one seed, the range of the untested gaps."""
        words = self.words
        tested = [p for p in items if p.verdict != "untested"]
        if len(tested) == 1 and len(items) == 1:
            return Markup("")  # its own sentence has said it
        if tested:
            inside = sum(p.verdict == "inside" for p in tested)
            return fill(words["verdict_tested"], inside=inside, n=len(tested))
        gaps = sorted(p.gap for p in items)
        if len(items) == 1:
            return fill(words["verdict_untested_one"], gap=self.signed_pp(gaps[0]))
        if gaps[-1] < 0 or gaps[0] > 0:
            side = "below" if gaps[-1] < 0 else "above"
            small, large = sorted(abs(g) for g in (gaps[0], gaps[-1]))
            return fill(words[f"verdict_untested_{side}"], low=self.fmt.pp(small), high=self.fmt.pp(large))
        return fill(words["verdict_untested_both"], low=self.signed_pp(gaps[0]), high=self.signed_pp(gaps[-1]))

    def abstract_reproduction(self) -> Markup:
        """The abstract's verdict on the published figures compared at their budget (nothing without any)."""
        items = [p for p in self.f.published if p.comparable]
        if not items:
            return Markup("")
        words = self.text["abstract"]
        tested = [p for p in items if p.verdict != "untested"]
        if len(items) == 1:
            one = items[0]
            setting = self._in_text(one.group)  # "at the baseline", "at lr 0.001"
            if one.verdict == "untested":
                return fill(words["repro_single"], ref=self.fmt.pct(one.ref["test_accuracy"]), setting=setting,
                            gap=self.signed_pp(one.gap))  # fmt: skip
            low, high = one.interval  # type: ignore[misc]
            interval = self.interval(low, high, "test_accuracy")
            return fill(words["repro_one"], ref=self.fmt.pct(one.ref["test_accuracy"]), setting=setting,
                        where=words[one.verdict], interval=interval)  # fmt: skip
        if tested:
            return fill(words["repro_tested"], inside=sum(p.verdict == "inside" for p in tested), n=len(tested))
        gaps = sorted(p.gap for p in items)
        if len(items) == 1:
            return fill(words["verdict_untested_one"], gap=self.signed_pp(gaps[0]))
        if gaps[-1] < 0 or gaps[0] > 0:
            small, large = sorted(abs(g) for g in (gaps[0], gaps[-1]))
            key = "repro_below" if gaps[-1] < 0 else "repro_above"
            return fill(words[key], low=self.fmt.pp(small), high=self.fmt.pp(large))
        return fill(words["repro_both"], low=self.signed_pp(gaps[0]), high=self.signed_pp(gaps[-1]))

    def sibling_answer(self, sibling: Any, factor: Any, published: Sequence[Published], brief: bool = False) -> Markup:
        """What the study beside this one found: its factor's values with their intervals, and its published
        figures judged by their prediction intervals; nothing when it is not beside this study. `brief` (the
        abstract): its first and best values only, and the published figures' verdict without the intervals."""
        if sibling is None or factor is None:
            return Markup("")
        if brief:
            first, best = factor.groups[0], factor.best
            out = fill(self.words["sibling_answer_brief"], first=self.ci(first), best=self.ci(best),
                       first_setting=self.setting_word(factor.key, self.factor_value_text(factor, first)),
                       best_setting=self.setting_word(factor.key, self.factor_value_text(factor, best)))  # fmt: skip
            for p in published:
                if p.verdict != "untested" and p.group in factor.groups:
                    out += Markup(" ") + fill(
                        self.words[f"sibling_ref_{p.verdict}_brief"], ref=self.fmt.pct(p.ref["test_accuracy"])
                    )
            return out
        items = [
            fill(self.words["factor_item"], value=self.setting_word(factor.key, self.factor_value_text(factor, g)),
                 acc=self.ci(g))
            for g in factor.groups
        ]  # fmt: skip
        out = fill(self.words["sibling_answer"], study=sibling.name, items=self.join(items, True))
        for p in published:
            if p.verdict != "untested" and p.group in factor.groups:
                interval = self.interval(p.interval[0], p.interval[1], "test_accuracy")  # type: ignore[index]
                setting = self.setting_word(factor.key, self.factor_value_text(factor, p.group))
                out += Markup(" ") + fill(
                    self.words[f"sibling_ref_{p.verdict}"], ref=self.fmt.pct(p.ref["test_accuracy"]),
                    setting=setting, interval=interval,
                )  # fmt: skip
        return out

    def tested_by_sentence(
        self, study: str, sibling: Any, factor: Any, published: Sequence[Published], answered: bool
    ) -> Markup:
        """With one seed the published gaps cannot be tested: the study with seeds that bears on them, and its
        answer unless the Discussion has already quoted it (`answered`)."""
        if answered:
            return fill(self.words["tested_by_above"], study=study)
        return (
            fill(self.words["tested_by"], study=study) + Markup(" ") + self.sibling_answer(sibling, factor, published)
        )
