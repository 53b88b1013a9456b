"""Small template helpers that turn names and values into the report's words (one language at a time)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from markupsafe import Markup, escape

from cnnkit.report import analysis as an
from cnnkit.report.localize import Formatter, capfirst
from cnnkit.report.netinfo import reader

# How config.json names a CPU device: "CPU x86_64 (2 threads)" (older records also say "(1 threads)").
CPU_DEVICE = re.compile(r"CPU(?P<machine> \S+)? \((?P<threads>\d+) threads?\)")


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


def setting_words(text: dict[str, Any], fmt: Formatter) -> Callable[[str, Any], str]:
    """A run setting as the report names it: "lr 0.01", "dropout 0.25", "augmentation flip+crop"."""
    value = value_formatter(fmt)

    def word(key: str, x: Any) -> str:
        shown = "+".join(map(str, x)) if isinstance(x, (list, tuple)) else value(x)
        return str(text["setting"].get(key, key + " {value}")).format(value=shown)

    return word


def helpers(
    text: dict[str, Any],
    fmt: Formatter,
    tr: Any,
    seeds_of: dict[tuple[Any, ...], int],
    registries: Any,
    lang: str,
    tail_keys: Sequence[str] = (),
) -> dict[str, Any]:
    """Template helpers that return plain strings (safe to pass into translated sentences).

    `tail_keys`: the settings, beyond dataset, network and optimizer, that tell the study's configurations apart
    (an lr grid's lr, the levers); a configuration's label names them."""
    names, seed_word = text["names"], text["cols"]["seed"].lower()
    word = setting_words(text, fmt)

    def nm(kind: str, key: Any) -> str:
        """The reader's name of a dataset, architecture, optimizer or verdict: the report's own words first,
        then the plugin's display name, then the registry name."""
        table = names.get(kind) or names.get(kind.removesuffix("_short"), {})
        if str(key) in table:
            return str(table[str(key)])
        base = kind.removesuffix("_short")
        if base in ("dataset", "architecture"):
            return reader(registries, f"{base}s", str(key)).name_or(str(key))
        return str(key)

    def the(kind: str, key: Any) -> str:
        """A network (or dataset) as a noun phrase: the report's own and lower-case names take the language's
        article ("the pooling CNN (net_1)"); a plugin's capitalised display name is a proper name ("LeNet-5")."""
        name = nm(kind, key)
        proper = str(key) not in (names.get(kind) or {}) and name[:1].isupper()
        return name if proper else f"{text['grammar']['article']} {name}"

    def tail(run: an.Run | an.Group) -> list[str]:
        """What sets a configuration apart beyond dataset, network and optimizer; "baseline" for the one
        without any of the levers its study varies."""
        parts = [
            word(k, run.setting(k))
            for k in tail_keys
            if k not in an.LEVER_KEYS or run.setting(k) != an.LEVER_DEFAULTS[k]
        ]
        if not parts and any(k in an.LEVER_KEYS for k in tail_keys):
            parts.append(text["setting"]["baseline"])
        return parts

    def base_label(run: an.Run | an.Group, short: bool = False, sep: str = " · ", dataset: bool = True) -> str:
        kinds = ("dataset", "architecture_short" if short else "architecture", "optimizer")[0 if dataset else 1 :]
        return sep.join(nm(k, run[k.removesuffix("_short")]) for k in kinds)

    def label(run: an.Run | an.Group, short: bool = False, sep: str = " · ", dataset: bool = True) -> str:
        """A run or configuration by its dataset (unless `dataset` is false), network, optimizer and what else
        sets it apart; a run of a configuration with several seeds adds its seed."""
        parts = [base_label(run, short, sep, dataset), *tail(run)]
        if isinstance(run, an.Run) and seeds_of.get(run.config_key, 1) > 1:
            parts.append(f"{seed_word} {run['seed']}")
        return sep.join(parts)

    def short_label(group: an.Group) -> str:
        """A configuration by what sets it apart in its study (its full label when nothing does)."""
        return " · ".join(tail(group)) or label(group, True)

    def join(items: Iterable[Any], numbers: bool = False) -> Markup:
        """'a', 'a and b', 'a, b and c'; items are escaped unless already Markup. Items that are or start with
        numbers are separated as the locale separates numbers ("0,001; 0,01 y 0,1" where the decimal mark is a
        comma)."""
        parts = [escape(i) for i in items]
        if len(parts) < 2:
            return parts[0] if parts else escape(text["meta"]["none"])
        sep = Markup(escape(fmt.list_separator if numbers else ", "))
        return sep.join(parts[:-1]) + Markup(" ") + escape(text["meta"]["and"]) + Markup(" ") + parts[-1]

    def ranked(rk: an.Ranking) -> str:
        return join(f"{nm(rk.vary, g[rk.vary])} ({ci(g, rk.metric)})" for g in rk.groups)

    def epoch_time(seconds: Sequence[float]) -> str:
        if not seconds:
            return "—"
        if len(seconds) < 2:
            return fmt.seconds(seconds[0], 2)
        import statistics

        return f"{fmt.seconds(statistics.mean(seconds), 2)} ± {fmt.seconds(statistics.stdev(seconds), 2)}"

    def device(recorded: str | None) -> str:
        """The device a run recorded, in the report's language: "CPU x86_64, 1 thread"; a GPU's name as it is."""
        found = CPU_DEVICE.fullmatch(recorded or "")
        if not found:
            return recorded or "—"
        threads = int(found["threads"])
        return f"CPU{found['machine'] or ''}, " + tr.ngettext("%(num)s thread", "%(num)s threads", threads) % {
            "num": fmt.int(threads)
        }

    def config_rows(run: an.Run, keys: Sequence[str], seeds: Sequence[int] = ()) -> list[tuple[str, Any]]:
        """(setting, value) rows of a run's config.json; `seeds`, when several, stand for the run's own seed."""
        shown = {"device": device(run.config.get("device")), **({"seed": list(seeds)} if len(seeds) > 1 else {})}
        return [(k, shown.get(k, run.config[k])) for k in keys if k in run.config]

    def vary(variants: str | Sequence[str], i: int) -> str:
        """The i-th wording of a sentence that recurs (a careful author does not repeat one pattern)."""
        return variants if isinstance(variants, str) else variants[i % len(variants)]

    def data_files(data: dict[str, Any]) -> list[tuple[str, str]]:
        """(file name, SHA-256 or '') of a dataset's files; old records give the source's base name only."""
        files = data.get("files")
        if files:
            return [(str(f.get("name", "")), str(f.get("sha256", ""))) for f in files]
        source = str(data.get("source") or "")
        return [(source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1], "")] if source else []

    def metric_fmt(metric: str) -> Callable[[float], str]:
        return fmt.pct if "accuracy" in metric else fmt.loss

    def spread(x: float, metric: str) -> str:
        """A spread (sd, half-width, difference) of a metric: points for accuracies, plain for losses."""
        return fmt.pp(x) if "accuracy" in metric else fmt.loss(x)

    def ci(group: an.Group, metric: str = "test_accuracy") -> str:
        """A configuration's mean with its 95 % half-width ("90.10% ± 1.20 pp"); one seed: its value."""
        s = group.stats(metric)
        mean = metric_fmt(metric)(s.mean)
        return mean if s.half_width is None else f"{mean} ± {spread(s.half_width, metric)}"

    def interval(low: float, high: float, metric: str) -> str:
        """A 95 % interval as "88.90% to 91.30%" (differences: "+0.50 pp to +3.70 pp")."""
        return fill(text["stats"]["interval"], low=metric_fmt(metric)(low), high=metric_fmt(metric)(high))

    def diff_interval(c: an.Comparison) -> str:
        """The Welch interval of a difference of means, signed: "+0.50 pp to +3.70 pp"."""
        assert c.interval is not None
        sign = 1 if c.diff >= 0 else -1  # the interval of |diff|: the same side as the difference itself
        low, high = sorted((sign * c.interval[0], sign * c.interval[1]))
        as_pp = "accuracy" in c.metric
        num = (lambda x: f"{fmt.num(100 * x, signed=True)}\xa0pp") if as_pp else (lambda x: fmt.num(x, 4, True))
        return fill(text["stats"]["interval"], low=num(low), high=num(high))

    return {
        "ci": ci,
        "interval": interval,
        "diff_interval": diff_interval,
        "spread": spread,
        "nm": nm,
        "the": the,
        "label": label,
        "short_label": short_label,
        "base_label": base_label,
        "tail": tail,
        "setting_word": word,
        "labels": lambda runs: [label(r, True) for r in runs],
        "join": join,
        "ranked": ranked,
        "epoch_time": epoch_time,
        "config_rows": config_rows,
        "device": device,
        "vary": vary,
        "data_files": data_files,
    }


ADADELTA_FAR_BEHIND = 0.05  # Adadelta this far (5 points) behind Adam points at its learning rate


def _gap(x: Any) -> float:
    return x.fast.stats("test_accuracy").mean - x.slow.stats("test_accuracy").mean


def prose_helpers(ctx: dict[str, Any], text: dict[str, Any], fmt: Formatter, tr: Any) -> dict[str, Any]:
    """Helpers that compose Discussion and Conclusions phrases from the findings in `ctx` (see render.py)."""
    nm, label, join = ctx["nm"], ctx["label"], ctx["join"]
    words = {**text["discussion"], **text["conclusions"], **text["results"]}

    def ngettext(singular: str, plural: str, n: int, **values: Any) -> Markup:
        return Markup(escape(tr.ngettext(singular, plural, n))) % {"num": fmt.int(n), **values}

    def signed_pp(x: float) -> str:
        return f"{fmt.num(100 * x, signed=True)}\xa0pp"

    def names_of(kind: str) -> list[str]:
        return list(dict.fromkeys(nm(kind, r[kind]) for r in ctx["study"].runs))

    def cited(kind: str) -> list[str]:
        """Names of the study's datasets or architectures, each with its in-text citation where its plugin gives one."""
        return [
            f"{nm(kind, name)} ({info.cite_as})" if info.cite_as else nm(kind, name)
            for name, info in ctx["readers"][kind].items()
        ]

    def opt_leads(rankings: Sequence[an.Ranking]) -> list[str]:
        return [
            fill(text["abstract"]["opt_item"], optimizer=nm("optimizer", g["optimizer"]),
                 dataset=nm("dataset", g["dataset"]), arch=nm("architecture_short", g["architecture"]),
                 acc=ctx["ci"](g))
            for g in (rk.groups[0] for rk in rankings)
        ]  # fmt: skip

    def gain_items(gains: Sequence[Any]) -> list[str]:
        return [fill(words["gain_item"], run=label(g.group, True), gain=fmt.pp(g.gain)) for g in gains]

    def agree(group: an.Group, always: bool = True) -> Markup:
        """The count "(2 of 3 seeds agree)" after a configuration's verdict; nothing for one seed (nor, unless
        `always`, when every seed agrees)."""
        if not group.multi_seed or (not always and group.agree == group.n):
            return Markup("")
        return (
            Markup(" (")
            + ngettext(
                "%(num)s of %(total)s seeds agrees", "%(num)s of %(total)s seeds agree", group.agree, total=group.n
            )
            + Markup(")")
        )

    def kinds_sentence(pair: Any, names: dict[str, str]) -> str:
        only_a, only_b = pair.only_a, pair.only_b
        if only_a and only_b:
            return capfirst(fill(words["kinds_both"], kinds_a=join(only_a), kinds_b=join(only_b), **names))
        if only_a or only_b:
            who = names["a"] if only_a else names["b"]
            return capfirst(fill(words["kinds_one"], who=who, kinds=join(only_a or only_b)))
        return fill(words["kinds_same"], kinds=join(pair.a.kinds))

    def published_budgets(items: Sequence[Any]) -> str:
        per_dataset = {p.group["dataset"]: p.epochs for p in items}
        return join(
            fill(
                words["budget_item"],
                epochs=ngettext("%(num)s epoch", "%(num)s epochs", e or 0),
                dataset=nm("dataset", d),
            )
            for d, e in per_dataset.items()
        )

    def slow_items(items: Sequence[Any]) -> list[str]:
        return [
            fill(words["puzzle_item"], arch=ctx["the"]("architecture", x.slow["architecture"]), lr=fmt.value(x.lr),
                 epochs=ngettext("%(num)s epoch", "%(num)s epochs", x.slow["epochs"]),
                 acc_slow=fmt.pct(x.slow.stats("test_accuracy").mean),
                 acc_fast=fmt.pct(x.fast.stats("test_accuracy").mean))
            for x in items
        ]  # fmt: skip

    def overfit_summary() -> Markup:
        """One line: which runs overfit (from which epoch, with the evidence), which do not, which cannot tell yet."""
        verdicts, parts = ctx["verdicts"], []
        items = [
            fill(words["overfit_item"], run=label(o.group, True) + agree(o.group, False), since=o.since,
                 rise=fmt.pct(o.rise_rel), gap=fmt.pp(o.acc_gap))
            for o in ctx["overfits"]["strong"]
        ]  # fmt: skip
        if items:
            parts.append(fill(words["overfit_strong"], runs=join(items)))
        for verdict in ("mild", "none", "too_early"):
            if verdicts[verdict]:
                runs = join(label(g, True) + agree(g, False) for g in verdicts[verdict])
                parts.append(fill(words[f"overfit_{verdict}"], runs=runs, min=ctx["min_epochs"]))
        return fill(words["overfit_lead"], parts=capfirst(Markup("; ").join(parts)))

    def opt_why(rk: an.Ranking) -> Markup:
        slow = [nm("optimizer", g["optimizer"]) for g in rk.groups[1:] if g["optimizer"] in ("adagrad", "adadelta")]
        epochs = ngettext("%(num)s epoch", "%(num)s epochs", rk.groups[0]["epochs"])
        return ngettext(
            "At Keras' default learning rate of 1e-3, %(slow)s takes steps too small to converge in %(epochs)s, "
            "while 1e-3 is the rate Adam was designed for.",
            "At Keras' default learning rate of 1e-3, %(slow)s take steps too small to converge in %(epochs)s, "
            "while 1e-3 is the rate Adam was designed for.",
            len(slow),
            slow=join(slow),
            epochs=epochs,
        )

    def next_steps() -> list[str]:
        steps = []
        behind = [x for x in ctx["adadelta_vs_adam"] if x.improving or _gap(x) > ADADELTA_FAR_BEHIND]
        if behind:
            steps.append(words["next_lr"])
        strong = ctx["overfits"]["strong"]
        if strong:
            steps.append(words["next_early"])
        if strong and not ctx["levers"]:  # a study that tried the levers has its answer in the Discussion
            datasets = join(dict.fromkeys(nm("dataset", o.group["dataset"]) for o in strong))
            steps.append(fill(words["next_regularize"], datasets=datasets))
        if ctx["verdicts"]["too_early"]:
            steps.append(fill(words["next_longer"], min=ctx["min_epochs"]))
        if any(r.get("subset") for r in ctx["study"].runs):
            steps.append(words["next_full_set"])
        if not ctx["multi_seed"] and len(ctx["groups"]) > 1:
            steps.append(words["next_seeds"])
        return steps

    value = value_formatter(fmt)

    def factor_name(key: str) -> str:
        return str(text["factor"].get(key, key))

    def factor_value_text(factor: Any, group: an.Group) -> str:
        x = factor.values[factor.groups.index(group)]
        if factor.key in ("dataset", "architecture", "optimizer"):
            return nm(factor.key, x)
        if isinstance(x, (list, tuple)):
            return "+".join(map(str, x)) or text["meta"]["none"]
        return text["meta"]["none"] if x is None else value(x)

    def factor_values(factor: Any) -> list[str]:
        return [factor_value_text(factor, g) for g in factor.groups]

    def published_items(groups: Sequence[an.Group]) -> list[str]:
        """ "87.35% at lr 0.001 (original assignment (Keras))" for configurations with a published figure."""
        return [
            fill(words["published_item"], acc=fmt.pct(g.reference_accuracy), setting=ctx["short_label"](g))
            for g in groups
        ]  # fmt: skip

    def lever_items(group: an.Group) -> list[Markup]:
        """The levers a configuration used, as its config.json records them (`levers`, else top-level keys)."""
        lv, run = text["levers"], group.runs[0]
        recorded = run.config.get("levers") or {}
        items = []
        if group.setting("augment"):
            items.append(fill(lv["augment"], names=join(group.setting("augment"))))
        if group.setting("dropout"):
            items.append(fill(lv["dropout"], p=value(group.setting("dropout"))))
        if group.setting("weight_decay"):
            mode = recorded.get("weight_decay_mode") or ("decoupled" if group["preset"] == "keras" else "l2")
            mode_text = lv.get(f"mode_{mode}", mode)
            items.append(fill(lv["weight_decay"], w=value(group.setting("weight_decay")), mode=mode_text))
        if group.setting("lr_schedule"):
            items.append(fill(lv["schedule"], name=group.setting("lr_schedule")))
        if group.setting("early_stopping"):
            stopped = [e for e in group.stopped if e is not None]
            where = (
                fill(lv["stopped"], epochs=join(map(str, stopped)), planned=group["epochs"])
                if stopped
                else lv["not_stopped"]
            )
            items.append(fill(lv["early_stopping"], patience=group.setting("early_stopping"), where=where))
        if group.setting("label_smoothing"):
            items.append(fill(lv["label_smoothing"], f=value(group.setting("label_smoothing"))))
        return items

    def seeds_note(group: an.Group) -> str:
        """After a configuration's name in a caption: over how many seeds its curves are averaged."""
        if not ctx["multi_seed"]:
            return ""
        if not group.multi_seed:
            return words["one_seed_note"]
        return fill(words["seeds_note"], n=group.n)

    def factor_items(factor: Any) -> list[str]:
        """ "0.001: 87.20% ± 0.40 pp" for each value of the factor, in order."""
        return [fill(words["factor_item"], value=factor_value_text(factor, g), acc=ctx["ci"](g)) for g in factor.groups]

    def reference_items(groups: Sequence[an.Group]) -> list[str]:
        """ "87.35% published at lr 0.001, 86.90% ± 0.50 pp here" for configurations with a published figure."""
        return [
            fill(words["reference_item"], ref=fmt.pct(g.reference_accuracy), setting=ctx["short_label"](g),
                 acc=ctx["ci"](g), diff=signed_pp(g.stats("test_accuracy").mean - g.reference_accuracy))
            for g in groups
        ]  # fmt: skip

    def curves_ref(group: an.Group) -> Markup:
        """A link to a configuration's learning-curve figure."""
        index = next(i for i, g in enumerate(ctx["groups"]) if g is group)
        return Markup('<a href="#curves-{}">{}</a>').format(index, words["its_curves"])

    def row_names(rows: Sequence[Any]) -> list[str]:
        return [ctx["short_label"](r.group) for r in rows]

    def lever_names(ablation: Any) -> list[str]:
        """The levers tried one at a time."""
        return row_names([r for r in ablation.rows if len(r.levers) == 1])

    return {
        "factor_name": factor_name,
        "factor_value_text": factor_value_text,
        "factor_values": factor_values,
        "published_items": published_items,
        "lever_names": lever_names,
        "row_names": row_names,
        "lever_items": lever_items,
        "seeds_note": seeds_note,
        "factor_items": factor_items,
        "reference_items": reference_items,
        "curves_ref": curves_ref,
        "signed_pp": signed_pp,
        "names_of": names_of,
        "cited": cited,
        "opt_leads": opt_leads,
        "gain_items": gain_items,
        "kinds_sentence": kinds_sentence,
        "published_budgets": published_budgets,
        "agree": agree,
        "slow_items": slow_items,
        "overfit_summary": overfit_summary,
        "opt_why": opt_why,
        "next_steps": next_steps,
    }
