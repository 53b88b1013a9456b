"""Render a study's IMRaD report (self-contained HTML, and PDF from the same HTML via WeasyPrint).

The report is a pure function of the study directory: same files in, byte-identical HTML out. Its date is
$SOURCE_DATE_EPOCH when set, else the modification time of the newest result file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from cnnkit.errors import CnnkitError, RunError, UsageError
from cnnkit.registry import ReaderInfo, StudyNotes
from cnnkit.report import analysis as an
from cnnkit.report import citations as cite
from cnnkit.report import discussion as ds
from cnnkit.report import errors as er
from cnnkit.report import factors as fc
from cnnkit.report import figures as fg
from cnnkit.report import phrasing
from cnnkit.report.catalog import TEMPLATES, load_text
from cnnkit.report.localize import Formatter, capfirst, translations
from cnnkit.report.netinfo import net_infos, reader
from cnnkit.report.search import search_figures, search_findings
from cnnkit.results.files import RunFiles, manifest_path, report_dir, report_file
from cnnkit.storage.atomic import write_bytes_atomic
from cnnkit.storage.diskspace import DiskFull, is_disk_full

FORMATS = ("html", "pdf")


# ----------------------------------------------------------------------------------------------- inputs
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
        files = [RunFiles(r.path).result for r in study.runs] or [manifest_path(study.path)]
        stamp = max((int(f.stat().st_mtime) for f in files if f.exists()), default=0)
    return datetime.fromtimestamp(stamp, tz=timezone.utc)


def run_dates(study: an.Study) -> tuple[datetime, datetime] | None:
    """The first and last day the study's runs finished, as their result.json recorded it (None when no run did:
    runs written before cnnkit recorded it; the files' modification times say when they were copied, not run)."""
    stamps = []
    for run in study.runs:
        try:
            stamps.append(datetime.fromisoformat(str(run.result["finished"]).replace("Z", "+00:00")))
        except (KeyError, ValueError):
            continue
    return (min(stamps), max(stamps)) if stamps else None


# ----------------------------------------------------------------------------------------------- context
def _class_names(names: Sequence[str], dataset: ReaderInfo, text: dict[str, Any], lang: str) -> list[str]:
    """A dataset's class names in the report's language: its plugin's own (ReaderInfo.class_names), else the
    names as recorded."""
    return dataset.classes_in(lang, names) or list(names)


def _figures(groups: Sequence[an.Group], text: dict[str, Any], lang: str, registries: Any) -> dict[str, Any]:
    """Per configuration (index i of `groups`): mean learning curves, the confusion matrix summed over its seeds
    with per-class accuracy, and the misclassified examples of one seed."""
    words = text["figure_words"]
    lc: list[str] = []
    cm: list[str | None] = []
    tiles: list[list[fg.Tile] | None] = []
    per_class: list[list[tuple[str, float]] | None] = []
    for i, group in enumerate(groups):
        lc.append(fg.learning_curves(group.curves, words, f"lc{i}"))
        confusion, shown = group.confusion, group.gallery_run
        pred = shown.predictions if shown is not None else None
        if confusion is None or pred is None:
            cm.append(None)
            per_class.append(None)
            tiles.append(None)
            continue
        names = _class_names(pred.class_names, reader(registries, "datasets", group["dataset"]), text, lang)
        cm.append(fg.confusion_heatmap(confusion, names, words, f"cm{i}"))
        per_class.append(list(zip(names, an.per_class_accuracy(confusion), strict=True)))
        tiles.append(fg.misclassified_tiles(pred.images, pred.images_true, pred.images_pred, names))
    return {"lc": lc, "cm": cm, "tiles": tiles, "per_class": per_class}


def _factor_figure(factor: fc.Factor | None, text: dict[str, Any]) -> str | None:
    """Final test accuracy against a numeric factor, with the published figures where configurations have one."""
    if factor is None or not factor.numeric:
        return None
    points = []
    for value, group in zip(factor.values, factor.groups, strict=True):
        s = group.stats("test_accuracy")
        points.append((float(value), s.mean, s.half_width))
    refs = [
        (float(fc.factor_value(g, factor.key)), float(g.reference_accuracy), text["figure_words"]["published"])
        for g in factor.references
    ]
    words = {**text["figure_words"], "factor": capfirst(text["factor_axis"].get(factor.key, factor.key))}
    return fg.factor_effect(points, refs, factor.log, words, "fx")


def _optimizer_figures(
    rankings: Sequence[an.Ranking], text: dict[str, Any], name: Callable[[str, Any], str]
) -> list[dict[str, Any]]:
    out = []
    for i, rk in enumerate(rankings):
        series = [(name("optimizer", g["optimizer"]), [r.history for r in g.runs]) for g in rk.groups]
        out.append({"ranking": rk, "svg": fg.optimizer_comparison(series, text["figure_words"], f"oc{i}")})
    return out


def _tail_keys(groups: Sequence[an.Group]) -> list[str]:
    """Settings a configuration's label must name: those that vary where dataset, network and optimizer alone
    do not tell the configurations apart (an lr grid, levers); none for the assignment."""
    named = {tuple(g[k] for k in ("dataset", "architecture", "optimizer")) for g in groups}
    if len(named) == len(groups):
        return []
    return [k for k in fc.varying(groups) if k not in ("dataset", "architecture", "optimizer")]


def _present(study: an.Study, pool_vs_stride: bool) -> set[str]:
    """What the study has that its text cites (the presets, the pooling-versus-stride contrast)."""
    present = {str(r["preset"]) for r in study.runs}
    return present | ({"pool_vs_stride"} if pool_vs_stride else set())


def _optimizer_defaults(study: an.Study, registries: Any) -> dict[str, ds.OptimizerDefaults]:
    """Each optimizer of the study: its learning rate under the keras preset and its usual (class default) one."""
    out = {}
    for name in dict.fromkeys(r["optimizer"] for r in study.runs):
        if registries is None or name not in registries.optimizers:
            continue
        spec = registries.optimizers.get(name)
        keras, usual = (spec.hyperparameters(preset).get("lr") for preset in ("keras", "torch"))
        out[name] = ds.OptimizerDefaults(keras, usual)
    return out


def _registered(study: an.Study, registries: Any) -> Any:
    """The registered study of this name (None for a study file's own studies)."""
    if registries is None or study.name not in registries.studies:
        return None
    return registries.studies.get(study.name)


def _study_notes(study: an.Study, registries: Any) -> StudyNotes:
    """What the registered study of this name tells the reader."""
    return getattr(_registered(study, registries), "notes", None) or StudyNotes()


def _registered_references(study: an.Study, registries: Any) -> dict[str, dict[str, Any]]:
    """The registered study's published references by run directory (they name the budget of each figure)."""
    registered = _registered(study, registries)
    if registered is None:
        return {}
    return {config.dir_name: dict(spec.reference) for config, spec in registered.expand() if spec.reference}


APPENDIX_SETTINGS = (
    "preset", "optimizer_hparams", "batch_size", "epochs", "val_split", "subset", "seed", "levers", "init",
    "trainer", "device", "platform",
)  # fmt: skip  # config.json's keys the appendix shows per run, in this order


def _sibling(study: an.Study, name: str) -> an.Study | None:
    """The study `name` when its results sit beside this one's (the same parent directory), else None."""
    if not name or name == study.path.name:
        return None
    path = study.path.parent / name
    if not manifest_path(path).is_file():
        return None
    try:
        found = an.load_study(path)
    except CnnkitError:
        return None
    return found if found.runs else None


def _unofficial(study: an.Study, registries: Any) -> list[str]:
    """The datasets whose runs read files other than the official ones their plugin names (by SHA-256)."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in study.runs):
        official = set(reader(registries, "datasets", dataset).official_files.values())
        if not official:
            continue
        used = {
            f.get("sha256")
            for r in study.runs
            if r["dataset"] == dataset
            for f in r.config.get("data", {}).get("files") or []
        }
        if used and not used <= official:
            out.append(dataset)
    return out


def build_context(study: an.Study, text: dict[str, Any], lang: str, registries: Any = None) -> dict[str, Any]:
    """Everything the templates need, computed once: the findings (flat, as data), the study's notes, and
    `prose`, the Prose object that formats them."""
    fmt = Formatter(lang)
    groups = study.groups
    nets = net_infos(study.runs, registries)
    notes = _study_notes(study, registries)
    readers = {
        kind: {name: reader(registries, f"{kind}s", name) for name in dict.fromkeys(r[kind] for r in study.runs)}
        for kind in ("dataset", "architecture")
    }
    levers = [g for g in groups if fc.levers_of(g)]
    found = ds.find(
        study, nets, readers, _optimizer_defaults(study, registries), notes.explains, levers,
        _registered_references(study, registries),
    )  # fmt: skip
    prose = phrasing.Prose(text, fmt, registries, lang, found, _tail_keys(groups))
    envs: dict[str, dict[str, Any]] = {}
    for run in study.runs:
        env = {k: run.config.get(k) for k in ("device", "platform", "versions", "trainer")}
        envs.setdefault(repr(sorted(env.items(), key=str)), {**env, "runs": []})["runs"].append(run)
    factor, ablation, networks = fc.single_factor(groups), fc.ablation(groups), fc.architectures(groups, nets)
    grid = None if ablation else fc.crossed_grid(groups)  # levers crossed with a baseline are an ablation
    keywords = [
        *text["meta"]["keywords"],
        *(text["meta"]["keywords_pool_stride"] if found.pool_vs_stride else []),
        *(prose.nm(k, r[k]) for r in study.runs for k in ("architecture", "dataset", "optimizer")),
    ]
    optimizers = [reader(registries, "optimizers", name) for name in dict.fromkeys(r["optimizer"] for r in study.runs)]
    citations = [info.citation for info in [*optimizers, *(i for table in readers.values() for i in table.values())]]
    rank = found.rank
    sibling = _sibling(study, notes.tested_by)
    search = search_findings(study.path)  # a search study's part; None for any other study
    return {
        "search": search,
        "search_fig": search_figures(search, lang) if search else None,
        "tested_by": notes.tested_by,
        "cause_untested": bool(notes.cause) and notes.cause not in fc.varying(groups),
        "cause": notes.cause,
        "sibling": sibling,
        "sibling_factor": fc.single_factor(sibling.groups) if sibling else None,
        "sibling_published": ds.published(sibling.groups, _registered_references(sibling, registries))
        if sibling
        else [],
        "unofficial": _unofficial(study, registries),
        **{f.name: getattr(found, f.name) for f in fields(found)},
        "prose": prose,
        "fmt": fmt,
        "lang": lang,
        "keywords": list(dict.fromkeys(keywords)),
        "version": _version(),
        "t": text,
        "date": report_date(study),
        "run_dates": run_dates(study),
        "multi_seed": found.multi_seed,
        "opt_figures": _optimizer_figures(rank[("optimizer", "test_accuracy")], text, prose.nm),
        "archs": nets,
        "notes": {k: notes.text(k, lang) for k in ("introduction", "explanation", "conclusion", "overfitting")},
        "opt_families": list(zip(rank[("optimizer", "test_accuracy")], rank[("optimizer", "test_loss")], strict=True)),
        "factor": factor,
        "factor_fig": _factor_figure(factor, text),
        "ablation": ablation,
        "networks": networks,
        "grid": grid,
        "arch_pairs": [] if networks else found.arch_pairs,  # a comparison of networks says it all, once
        "datasets": {r["dataset"]: r.config.get("data") or {} for r in study.runs},
        "envs": list(envs.values()),
        "appendix_settings": APPENDIX_SETTINGS,
        "bibliography": cite.references(_present(study, found.pool_vs_stride), citations),
        "fig": _figures(groups, text, lang, registries),
        "errors": er.context(groups, text, lang, registries, prose),
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


# ----------------------------------------------------------------------------------------------- page layout
LONG_TABLE = 12  # rows: a table longer than this may break across pages in the PDF (its header repeated)
CONTENTS_MARK = "<!-- contents -->"
_HEADING = re.compile(r"<(h[23])((?:\s[^>]*)?)>(.*?)</\1>", re.S)
_ID = re.compile(r'\sid="([^"]*)"')
_VIEWBOX = re.compile(r'<svg[^>]*\sviewBox="\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)[\s,]+([\d.]+)\s*"')


def svg_aspect(svg: str) -> str:
    """An inline SVG's width / height from its viewBox (CSS `aspect-ratio`), "auto" without one."""
    found = _VIEWBOX.search(svg)
    return f"{found.group(1)} / {found.group(2)}" if found else "auto"


def breakable_pm(said: Any) -> Markup:
    """A mean ± half-width as two parts kept whole, the line free to break between them (before the ±); the
    text is unchanged."""
    text = escape(said)
    parts = text.split(" ± ", 1)
    if len(parts) == 1:
        return text
    return Markup('<span class="part">{}</span> <span class="part">± {}</span>').format(*parts)


_FIGURE = re.compile(r"<figure\b([^>]*)>|<figcaption\b")
_FIGREF = re.compile(r'(<a class="figref" href="#([^"]+)">)(.*?)(</a>)', re.S)


def with_figure_numbers(html: str) -> str:
    """Fill each reference to a figure (`<a class="figref" href="#ID">... {n} ...</a>`) with the figure's number,
    counted as report.css numbers the captions: every <figcaption>, in document order."""
    numbers: dict[str, int] = {}
    count, pending = 0, ""

    def number(found: re.Match[str]) -> str:
        nonlocal count, pending
        if found.group(0).startswith("<figcaption"):
            count += 1
            if pending:
                numbers[pending] = count
                pending = ""
            return found.group(0)
        given = _ID.search(found.group(1) or "")
        pending = given.group(1) if given else ""
        return found.group(0)

    html = _FIGURE.sub(number, html)
    return _FIGREF.sub(lambda f: f[1] + f[3].replace("{n}", str(numbers.get(f[2], "?"))) + f[4], html)


def with_contents(html: str, title: str) -> str:
    """The report with an id on every numbered section heading (h2, h3) and, at CONTENTS_MARK, a table of contents
    linking to them; the CSS numbers its entries as it numbers the headings, and shows it on the screen only."""
    items: list[tuple[str, str, list[tuple[str, str]]]] = []

    def anchor(found: re.Match[str]) -> str:
        tag, attrs, inner = found.groups()
        if "unnumbered" in attrs or (tag == "h3" and not items):
            return found.group(0)
        given = _ID.search(attrs)
        ident = given.group(1) if given else f"sec-{len(items) + (tag == 'h2')}"
        if tag == "h2":
            items.append((ident, inner, []))
        else:
            ident = ident if given else f"{ident}-{len(items[-1][2]) + 1}"
            items[-1][2].append((ident, inner))
        return found.group(0) if given else f'<{tag}{attrs} id="{ident}">{inner}</{tag}>'

    mark = html.find(CONTENTS_MARK)
    if mark < 0:
        return html
    body = _HEADING.sub(anchor, html[mark:])
    lines = [
        '<nav class="toc" aria-labelledby="toc-title">',
        f'<p class="toc-title" id="toc-title">{escape(title)}</p>',
        "<ol>",
    ]
    for ident, inner, subs in items:
        lines.append(f'<li><a href="#{ident}">{inner}</a>')
        if subs:
            lines.append("<ol>" + "".join(f'<li><a href="#{i}">{text}</a></li>' for i, text in subs) + "</ol>")
        lines.append("</li>")
    lines += ["</ol>", "</nav>"]
    return html[:mark] + "\n".join(lines) + body[len(CONTENTS_MARK) :]


# ----------------------------------------------------------------------------------------------- rendering
def _environment(lang: str) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATES, ""),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n", "jinja2.ext.do"],
    )
    env.install_gettext_translations(translations(lang, TEMPLATES), newstyle=True)  # type: ignore[attr-defined]
    fmt = Formatter(lang)
    env.filters.update(
        loss=fmt.loss, pct=fmt.pct, pp=fmt.pp, set_pct=fmt.set_pct, set_pp=fmt.set_pp, int=fmt.int, num=fmt.num,
        value=phrasing.value_formatter(fmt),
        shape=phrasing.fmt_shape, fill=phrasing.fill, cap=capfirst, aspect=svg_aspect, pm=breakable_pm,
        metric=lambda x, metric: fmt.pct(x) if "accuracy" in metric else fmt.loss(x),
    )  # fmt: skip
    return env


def render_html(study: an.Study, lang: str = "en", registries: Any = None) -> str:
    """The report as one self-contained HTML document; `registries` default to the installed plugins'."""
    if registries is None:
        from cnnkit.plugins import get_registries

        registries = get_registries()
    text = load_text(lang)
    env = _environment(lang)
    css = (resources.files(TEMPLATES) / "report.css").read_text(encoding="utf-8")
    context = build_context(study, text, lang, registries)
    html = env.get_template("report.html.j2").render(css=css, long_table=LONG_TABLE, **context)
    return with_figure_numbers(with_contents(html, text["layout"]["contents"]))


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


def render_report(
    study_dir: Path,
    formats: Sequence[str] = FORMATS,
    lang: str = "en",
    registries: Any = None,
    out: Path | None = None,
) -> list[Path]:
    """Write the report into STUDY_DIR/report/ (or `out`): report.html and/or report.pdf in English, report.es.html
    and report.es.pdf in Spanish; return the paths written."""
    wanted = check_formats(formats)
    load_text(lang)  # validate before any work
    study = an.load_study(Path(study_dir))
    if not study.runs:
        raise UsageError(
            f"{study_dir} has no finished run to report on; cnnkit status {study_dir} says where it stands"
        )
    html = render_html(study, lang, registries)
    folder = Path(out) if out is not None else report_dir(study.path)
    written = [report_file(folder, fmt, lang) for fmt in wanted]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path in written:
            write_bytes_atomic(path, html.encode("utf-8") if path.suffix == ".html" else html_to_pdf(html, folder))
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(Path(exc.filename or folder)) from exc
        raise RunError(
            f"cannot write the report into {folder}: {exc.strerror or exc}; choose another folder with --out",
            exit_code=1,
        ) from exc
    return written
