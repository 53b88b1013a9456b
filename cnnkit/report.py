"""Render a study's IMRaD report (self-contained HTML, and PDF from the same HTML via WeasyPrint).

The report is a pure function of the study directory: same files in, byte-identical HTML out. Its date is
$SOURCE_DATE_EPOCH when set, else the modification time of the newest result file.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from cnnkit import analysis as an
from cnnkit import figures as fg
from cnnkit.atomic import write_bytes_atomic
from cnnkit.errors import UsageError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

FORMATS = ("html", "pdf")
TEMPLATES = "cnnkit_templates"
POOL_VS_STRIDE = {"pooling_cnn", "strided_cnn"}


# ----------------------------------------------------------------------------------------------- inputs
def languages() -> list[str]:
    """Report languages available (one TOML file of texts each)."""
    folder = resources.files(TEMPLATES) / "i18n"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_text(lang: str) -> dict[str, Any]:
    """All words of the report in one language."""
    valid = languages()
    if lang not in valid:
        raise UsageError(f"unknown report language {lang!r}; valid: {', '.join(valid)}")
    return tomllib.loads((resources.files(TEMPLATES) / "i18n" / f"{lang}.toml").read_text(encoding="utf-8"))


def check_formats(formats: str | Iterable[str]) -> list[str]:
    """The valid report formats asked for, in canonical order; UsageError for an unknown one."""
    if isinstance(formats, str):
        formats = [formats]
    wanted = [f.strip().lower() for item in formats for f in str(item).split(",") if f.strip()]
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise UsageError(f"unknown report format {', '.join(bad) or '(none)'}; valid: {', '.join(FORMATS)}")
    return [f for f in FORMATS if f in wanted]


def report_date(study: an.Study) -> datetime:
    """$SOURCE_DATE_EPOCH, else the mtime of the newest result.json (study.json when there is none)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        stamp = int(epoch)
    else:
        files = [r.path / "result.json" for r in study.runs] or [study.path / "study.json"]
        stamp = max((int(f.stat().st_mtime) for f in files if f.exists()), default=0)
    return datetime.fromtimestamp(stamp, tz=timezone.utc)


# ----------------------------------------------------------------------------------------------- formatting
def fmt_loss(x: float) -> str:
    return f"{x:.4f}"


def fmt_pct(x: float) -> str:
    """A fraction in [0,1] (accuracy, relative change) as a percentage with two decimals."""
    return f"{100 * x:.2f} %"


def fmt_pp(x: float, signed: bool = False) -> str:
    """A difference of two accuracies, in percentage points."""
    return f"{100 * x:+.2f} pp" if signed else f"{100 * x:.2f} pp"


def fmt_int(x: float) -> str:
    return f"{int(x):,}"


def fmt_metric(x: float, metric: str, diff: bool = False) -> str:
    """Format a value of one of analysis.METRICS (differences of accuracies in points)."""
    if "accuracy" in metric:
        return fmt_pp(x) if diff else fmt_pct(x)
    return fmt_loss(x)


def fmt_shape(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def fmt_value(value: Any) -> str:
    """A config value: floats in short scientific form where small, dicts as k=v lists."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in value.items())
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(fmt_value(v) for v in value)
    return str(value)


# ----------------------------------------------------------------------------------------------- context
def _architectures(runs: Sequence[an.Run]) -> list[dict[str, Any]]:
    """One Keras-style layer table per (dataset, architecture), with multiply-adds per layer."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        model = run.config.get("model") or {}
        key = (run["dataset"], run["architecture"])
        if key in seen or not model.get("layers"):
            continue
        layers = [{**layer, "macs": an.layer_macs(layer)} for layer in model["layers"]]
        total = int(model.get("params") or sum(int(x.get("params", 0)) for x in layers))
        seen[key] = {"dataset": key[0], "architecture": key[1], "layers": layers, "params": total,
                     "macs": sum(x["macs"] for x in layers)}  # fmt: skip
    return list(seen.values())


def _layer_contrast(archs: list[dict[str, Any]], ranking: an.Ranking) -> dict[str, Any] | None:
    """For an architecture ranking: parameter totals and the first layer whose multiply-adds differ."""
    by_name = {a["architecture"]: a for a in archs if a["dataset"] == ranking.shared["dataset"]}
    tables = [by_name.get(g["architecture"]) for g in ranking.groups[:2]]
    if None in tables:
        return None
    a, b = tables
    convs = [[x for x in t["layers"] if x["macs"]] for t in (a, b)]
    out = {"a": a, "b": b, "layer": None, "pooling_vs_strided": False}
    for la, lb in zip(*convs, strict=False):  # layer lists may differ in length
        if la["macs"] != lb["macs"]:
            out.update(layer=la["name"], macs_a=la["macs"], macs_b=lb["macs"], ratio=lb["macs"] / la["macs"])
            break
    out["pooling_vs_strided"] = bool(out["layer"]) and {a["architecture"], b["architecture"]} == POOL_VS_STRIDE
    if out["pooling_vs_strided"]:
        out["strided_ratio"] = out["ratio"] if b["architecture"] == "strided_cnn" else 1 / out["ratio"]
    return out


def _adadelta_vs_adam(groups: Sequence[an.Group]) -> list[dict[str, Any]]:
    """Configurations run with both Adadelta at a small learning rate and Adam (the original's MNIST puzzle)."""
    out = []
    for slow in groups:
        lr = (slow.runs[0].config.get("optimizer_hparams") or {}).get("lr")
        if slow["optimizer"] != "adadelta" or lr is None or lr >= 0.1:
            continue
        for fast in groups:
            if fast["optimizer"] == "adam" and [fast[k] for k in ("dataset", "architecture", "epochs")] == [
                slow[k] for k in ("dataset", "architecture", "epochs")
            ]:
                improving = any(an.still_improving(r.history.val_accuracy) for r in slow.runs)
                out.append({"slow": slow, "fast": fast, "lr": lr, "improving": improving})
    return out


def _figures(study: an.Study, text: dict[str, Any]) -> dict[str, Any]:
    words = text["figure_words"]
    lc, cm, tiles, per_class = {}, {}, {}, {}
    for i, run in enumerate(study.runs):
        lc[run.dir] = fg.learning_curves(run.history, words, f"lc{i}")
        pred = run.predictions
        if pred is not None:
            cm[run.dir] = fg.confusion_heatmap(pred.confusion, pred.class_names, words, f"cm{i}")
            per_class[run.dir] = list(zip(pred.class_names, an.per_class_accuracy(pred.confusion), strict=True))
            tiles[run.dir] = fg.misclassified_tiles(pred.images, pred.images_true, pred.images_pred, pred.class_names)
    return {"lc": lc, "cm": cm, "tiles": tiles, "per_class": per_class}


def _optimizer_figures(rankings: Sequence[an.Ranking], text: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    names = text["names"]["optimizer"]
    for i, rk in enumerate(rankings):
        series = [(names.get(g["optimizer"], g["optimizer"]), [r.history for r in g.runs]) for g in rk.groups]
        out.append({"ranking": rk, "svg": fg.optimizer_comparison(series, text["figure_words"], f"oc{i}")})
    return out


def _namers(text: dict[str, Any], seeds_of: dict[tuple[Any, ...], int]) -> dict[str, Any]:
    """Template helpers that return plain strings (safe to pass into translated sentences)."""
    names, seed_word = text["names"], text["cols"]["seed"].lower()

    def nm(kind: str, key: Any) -> str:
        table = names.get(kind) or names.get(kind.removesuffix("_short"), {})
        return str(table.get(str(key), key))

    def label(run: an.Run | an.Group, short: bool = False, sep: str = " · ") -> str:
        kinds = ("dataset", "architecture_short" if short else "architecture", "optimizer")
        parts = [nm(k, run[k.removesuffix("_short")]) for k in kinds]
        if isinstance(run, an.Run) and seeds_of.get(run.config_key, 1) > 1:
            parts.append(f"{seed_word} {run['seed']}")
        return sep.join(parts)

    def join(items: Iterable[Any]) -> str:
        items = [str(i) for i in items]
        if len(items) < 2:
            return "".join(items) or text["meta"]["none"]
        return f"{', '.join(items[:-1])} {text['meta']['and']} {items[-1]}"

    def opt_leads(rks: Sequence[an.Ranking]) -> list[str]:
        item = text["abstract"]["opt_item"]
        return [
            item.format(optimizer=nm("optimizer", g["optimizer"]), dataset=nm("dataset", g["dataset"]),
                        arch=nm("architecture", g["architecture"]), acc=fmt_pct(g.stats("test_accuracy").mean))
            for g in (rk.groups[0] for rk in rks)
        ]  # fmt: skip

    def ranked(rk: an.Ranking) -> str:
        return join(f"{nm(rk.vary, g[rk.vary])} ({fmt_metric(g.stats(rk.metric).mean, rk.metric)})" for g in rk.groups)

    def epoch_time(seconds: Sequence[float]) -> str:
        if not seconds:
            return "—"
        if len(seconds) < 2:
            return f"{seconds[0]:.2f} s"
        return f"{statistics.mean(seconds):.2f} ± {statistics.stdev(seconds):.2f} s"

    def config_rows(run: an.Run, keys: Sequence[str]) -> list[tuple[str, str]]:
        return [(k, fmt_value(run.config[k])) for k in keys if k in run.config]

    return {
        "nm": nm,
        "label": label,
        "epoch_time": epoch_time,
        "config_rows": config_rows,
        "labels": lambda runs: [label(r) for r in runs],
        "join": join,
        "ranked": ranked,
        "opt_leads": opt_leads,
    }


def build_context(study: an.Study, text: dict[str, Any]) -> dict[str, Any]:
    """Everything the templates need, computed once."""
    groups = study.groups
    rank = {(v, m): an.rankings(groups, v, m) for v in ("optimizer", "architecture") for m in an.METRICS}
    archs = _architectures(study.runs)
    arch_rankings = rank[("architecture", "test_accuracy")]
    verdicts = {v: [r for r in study.runs if r.fit.verdict == v] for v in an.VERDICTS}
    seeds_of = {g.key: len(g.runs) for g in groups}
    envs: dict[str, dict[str, Any]] = {}
    for run in study.runs:
        env = {k: run.config.get(k) for k in ("device", "platform", "versions", "trainer")}
        envs.setdefault(repr(sorted(env.items(), key=str)), {**env, "runs": []})["runs"].append(run)
    helpers = _namers(text, seeds_of)
    slow_fast = _adadelta_vs_adam(groups)
    references = [r for r in study.runs if r.reference]

    def names_of(kind: str) -> str:
        return helpers["join"](helpers["nm"](kind, v) for v in dict.fromkeys(r[kind] for r in study.runs))

    keywords = [
        *text["meta"]["keywords"],
        *(helpers["nm"](k, r[k]) for r in study.runs for k in ("dataset", "optimizer")),
    ]
    return {
        **helpers,
        "names_of": names_of,
        "keywords": list(dict.fromkeys(keywords)),
        "version": _version(),
        "study": study,
        "t": text,
        "date": report_date(study),
        "groups": groups,
        "multi_seed": any(n > 1 for n in seeds_of.values()),
        "seeds_of": seeds_of,
        "rank": rank,
        "opt_figures": _optimizer_figures(rank[("optimizer", "test_accuracy")], text),
        "archs": archs,
        "arch_contrasts": [(rk, _layer_contrast(archs, rk)) for rk in arch_rankings],
        "adadelta_vs_adam": slow_fast,
        "mnist_puzzle": bool(references) and any(x["slow"]["dataset"] == "mnist" for x in slow_fast),
        "opt_families": list(zip(rank[("optimizer", "test_accuracy")], rank[("optimizer", "test_loss")], strict=True)),
        "keras_defaults": any(r["preset"] == "keras" and r["optimizer"] in ("adadelta", "adagrad") for r in study.runs),
        "verdicts": verdicts,
        "datasets": {r["dataset"]: r.config.get("data") or {} for r in study.runs},
        "envs": list(envs.values()),
        "references": references,
        "best_by_dataset": {
            ds: max((r for r in study.runs if r["dataset"] == ds), key=lambda r: r["test_accuracy"])
            for ds in dict.fromkeys(r["dataset"] for r in study.runs)
        },
        "fig": _figures(study, text),
        "rule": {
            "strong_rise": an.STRONG_VAL_LOSS_RISE,
            "strong_gap": an.STRONG_ACC_GAP,
            "mild_rise": an.MILD_VAL_LOSS_RISE,
            "mild_gap": an.MILD_ACC_GAP,
        },
    }


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("cnnkit")
    except metadata.PackageNotFoundError:
        return "(development)"


# ----------------------------------------------------------------------------------------------- rendering
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATES, ""),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(
        loss=fmt_loss, pct=fmt_pct, pp=fmt_pp, int=fmt_int, metric=fmt_metric, shape=fmt_shape, value=fmt_value,
        fill=lambda s, **kw: s.format(**kw),
    )  # fmt: skip
    return env


def render_html(study: an.Study, lang: str = "en") -> str:
    """The report as one self-contained HTML document."""
    text = load_text(lang)
    env = _environment()
    css = (resources.files(TEMPLATES) / "report.css").read_text(encoding="utf-8")
    return env.get_template("report.html.j2").render(css=css, lang=lang, **build_context(study, text))


def html_to_pdf(html: str, base: Path) -> bytes:
    """PDF bytes from the report HTML (A4, page numbers from the CSS); dates come from the HTML's meta tags."""
    import logging

    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: WeasyPrint installed but Pango missing
        raise UsageError(
            f"PDF output needs WeasyPrint and the Pango library ({exc}); install them or ask for --format html"
        ) from exc

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    return weasyprint.HTML(string=html, base_url=str(base)).write_pdf(pdf_identifier=b"cnnkit-report")


def render_report(study_dir: Path, formats: Sequence[str] = FORMATS, lang: str = "en") -> list[Path]:
    """Write STUDY_DIR/report/report.html and/or report.pdf; return the paths written."""
    wanted = check_formats(formats)
    load_text(lang)  # validate before any work
    study = an.load_study(Path(study_dir))
    html = render_html(study, lang)
    out = study.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if "html" in wanted:
        write_bytes_atomic(out / "report.html", html.encode("utf-8"))
        written.append(out / "report.html")
    if "pdf" in wanted:
        write_bytes_atomic(out / "report.pdf", html_to_pdf(html, out))
        written.append(out / "report.pdf")
    return written
