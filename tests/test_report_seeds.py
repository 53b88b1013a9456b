"""Reports of studies with seeds and factors: the configuration is the unit, and statistics decide every claim."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_fixtures import ADADELTA_LR_RUNS, ASSIGNMENT_RUNS, CIFAR10_LEVERS_RUNS, make_study
from test_report import prose

from cnnkit.report import analysis as an
from cnnkit.report.localize import Formatter
from cnnkit.report.render import render_report

NETS = [("mnist", "pooling_cnn", "adam", 3, None), ("mnist", "strided_cnn", "adam", 3, None)]
OPTIMIZERS = [("mnist", "pooling_cnn", "adadelta", 3, None), ("mnist", "pooling_cnn", "adam", 3, None)]
WORDS = {
    "en": {
        "better": "did better than", "apart": "cannot be told apart with 3 seeds",
        "untested": "no difference", "summed": "summed over its 3 seeds", "lr": "learning rate",
        "decoupled": "decoupled, as Keras' optimizers apply it", "stopped": "stopped at epoch",
        "regularize": "regularization (dropout",
        "better_conclusions": "is ahead of", "apart_conclusions": "is not shown to differ from",
    },
    "es": {
        "better": "fue mejor que", "apart": "no se pueden distinguir con 3 semillas",
        "untested": "se contrastó ninguna diferencia", "summed": "sumada sobre sus 3 semillas",
        "lr": "tasa de aprendizaje", "decoupled": "desacoplado, como lo aplican los optimizadores de Keras",
        "stopped": "se detuvo en la época", "regularize": "regularización (dropout",
        "better_conclusions": "supera a", "apart_conclusions": "no se demuestra que",
    },
}  # fmt: skip


def render(root: Path, lang: str) -> str:
    return render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")


def read(text: str) -> str:
    """A number as prose() gives it: every space (no-break ones too) as one plain space."""
    return re.sub(r"\s+", " ", text)


def mean_ci(fmt: Formatter, group: an.Group) -> str:
    s = group.stats("test_accuracy")
    return read(f"{fmt.pct(s.mean)} ± {fmt.pp(s.half_width)}")


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("runs", [NETS, OPTIMIZERS], ids=["within-noise", "clear"])
def test_two_configurations_three_seeds(tmp_path, lang, runs):
    """The issue's study: 2 configurations x 3 seeds. Means with intervals, one verdict said alike everywhere."""
    root = make_study(tmp_path / "s", runs=runs, seeds=3, subset=2000, name="seeds")
    html, fmt, words = render(root, lang), Formatter(lang), WORDS[lang]
    a, b = an.load_study(root).groups
    c = an.compare(a, b, "test_accuracy")
    abstract, discussion, conclusions = (prose(html, s) for s in ("abstract", "discussion", "conclusions"))
    best = c.ahead
    assert mean_ci(fmt, best) in abstract  # the best configuration's mean and interval, not its best seed
    for run in best.runs:
        assert read(fmt.pct(run["test_accuracy"])) not in abstract + conclusions
    said = "better" if c.status == "clear" else "apart"
    unsaid = "apart" if said == "better" else "better"
    for text in (abstract, discussion):  # one verdict, worded once per section (no sentence said twice)
        assert words[said] in text and words[unsaid] not in text
    assert words[f"{said}_conclusions"] in conclusions and words[f"{unsaid}_conclusions"] not in conclusions
    diff = f"{fmt.num(100 * abs(c.diff))} pp"
    assert diff in discussion and diff in conclusions  # the Conclusions repeat the Discussion's difference
    # one figure per configuration, confusion summed over the seeds, one verdict per configuration
    assert len(re.findall(r'<figure class="curves" id="curves-\d"', html)) == 2
    assert html.count('<figure class="cm"') == 2 and html.count(words["summed"]) == 2
    overfit = re.search(r'<table class="overfit">.*?</table>', html, re.S).group(0)
    assert overfit.count('class="verdict ') == 2 and re.search(r">3 / 3<|>[0-3] / 3<", overfit)
    # the six seeds: in one appendix table, by name
    appendix = re.search(r'<section id="appendix">.*?</section>', html, re.S).group(0)
    assert len(re.findall(r'<td class="label">[^<]*· (seed|semilla) \d</td>', appendix)) == 6
    assert len(re.findall(r'<td class="label">[^<]*· (seed|semilla) \d</td>', html)) == 6


@pytest.mark.parametrize("lang", ["en", "es"])
def test_single_seed_configuration_says_so_and_tests_nothing(tmp_path, lang):
    root = make_study(tmp_path / "s", runs=OPTIMIZERS, seeds=1, subset=2000)
    html, words = render(root, lang), WORDS[lang]
    text = prose(html, "abstract", "discussion", "conclusions")
    assert words["untested"] in text and words["better"] not in text and words["apart"] not in text


@pytest.mark.parametrize("lang", ["en", "es"])
def test_lr_grid_names_its_factor_and_draws_it(tmp_path, lang):
    runs = [(*run[:5], run[5]) for run in ADADELTA_LR_RUNS]
    root = make_study(tmp_path / "adadelta-lr", runs=runs, seeds=2, name="adadelta-lr")
    html, fmt, words = render(root, lang), Formatter(lang), WORDS[lang]
    assert words["lr"] in prose(html, "introduction") and words["lr"] in prose(html, "discussion")
    assert 'id="factor-figure"' in html and "<svg" in html.split('id="factor-figure"')[1][:200]
    assert {"en": "logarithmic axis", "es": "eje logarítmico"}[lang] in html
    discussion, conclusions = prose(html, "discussion"), prose(html, "conclusions")
    study = an.load_study(root)
    for group in study.groups:  # net_2's accuracy at each lr, mean ± interval, in both closing sections
        assert mean_ci(fmt, group) in discussion and mean_ci(fmt, group) in conclusions
    published = read(f"{fmt.pct(0.8735)} {'published at' if lang == 'en' else 'publicada con'} lr {fmt.value(0.001)}")
    assert published in discussion and published not in conclusions  # said once, in the Discussion


@pytest.mark.parametrize("lang", ["en", "es"])
def test_levers_ablation_table_and_gain(tmp_path, lang):
    root = make_study(tmp_path / "cifar10-levers", runs=CIFAR10_LEVERS_RUNS, name="cifar10-levers")
    html, fmt, words = render(root, lang), Formatter(lang), WORDS[lang]
    table = re.search(r'<table class="ablation">.*?</table>', html, re.S)
    assert table and table.group(0).count("<tr>") == 1 + 6  # header, baseline, four levers, all together
    groups = an.load_study(root).groups
    base, best = groups[0], max(groups, key=lambda g: g["test_accuracy"])
    gain = f"{fmt.num(100 * (best['test_accuracy'] - base['test_accuracy']), signed=True)} pp"
    for section in ("abstract", "discussion", "conclusions"):
        assert gain in prose(html, section)
    assert words["untested"] in prose(html, "conclusions")  # one seed per setting
    assert words["regularize"] not in prose(html, "conclusions").lower()  # what the study tried is not what to try next
    assert words["decoupled"] in prose(html, "methods")
    setup = re.search(r'<table class="setup">.*?</table>', html, re.S).group(0)
    rows = [re.sub(r"<[^>]+>", "|", r) for r in re.findall(r"<tr>.*?</tr>", setup, re.S)[1:]]
    assert len(rows) == 6 and len(set(rows)) == 6  # the levers tell the rows apart
    assert 'href="#curves-' in html  # the lever that ends overfitting, with its curves as evidence


@pytest.mark.parametrize("lang", ["en", "es"])
def test_early_stopping_shortens_curves_and_is_described(tmp_path, lang):
    runs = [("cifar10", "pooling_cnn", "adam", 30, None, {"early_stopping": 3})]
    root = make_study(tmp_path / "s", runs=runs, seeds=2)
    study = an.load_study(root)
    (group,) = study.groups
    assert all(r.history.epochs < 30 for r in group.runs)
    assert group.curves.mean.epochs == max(r.history.epochs for r in group.runs)
    html = render(root, lang)
    assert WORDS[lang]["stopped"] in prose(html, "methods")


def test_five_seeds_keep_one_figure_per_configuration(tmp_path):
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:3], seeds=5)
    html = render(root, "en")
    assert len(re.findall(r'<figure class="curves" id="curves-\d"', html)) == 3
    assert html.count('<figure class="cm"') == 3


@pytest.mark.parametrize(("lang", "words"), [
    ("en", ("random horizontal flips", "cosine annealing learning-rate schedule")),
    ("es", ("volteos horizontales aleatorios", "recocido coseno")),
])  # fmt: skip
def test_methods_name_a_lever_plugin_by_its_reader_info(tmp_path, lang, words):
    """The augmentations and the schedule are described in Methods by their plugins' ReaderInfo, in the report's
    language (falling back to English), not by their registry names."""
    from cnnkit.report.render import render_report

    root = make_study(tmp_path / "cifar10-levers", runs=CIFAR10_LEVERS_RUNS)
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    methods = html.split('<section id="methods">')[1].split("</section>")[0]
    for word in words:
        assert word in methods


def test_spanish_labels_name_the_levers_in_spanish(tmp_path):
    """A lever plugin's values in labels by its ReaderInfo's short names in the report's language."""
    root = make_study(tmp_path / "cifar10-levers", runs=CIFAR10_LEVERS_RUNS, name="cifar10-levers")
    html = render(root, "es")
    text = prose(html, "abstract", "introduction", "discussion", "conclusions")
    assert "volteo+recorte" in text and "programa coseno" in text
    assert "flip" not in text and "cosine" not in text
    english = prose(render(root, "en"), "abstract", "introduction")
    assert "flip+crop" in english and "cosine schedule" in english


def _record_clean_figures(run: Path) -> None:
    """Give a fixture run the clean training figures of a run trained after they were added."""
    result = json.loads((run / "result.json").read_text())
    history = result["history"]
    history["train_eval_loss"] = [round(v * 0.9, 6) for v in history["train_loss"]]
    history["train_eval_accuracy"] = [min(1.0, round(v + 0.01, 6)) for v in history["train_accuracy"]]
    (run / "result.json").write_text(json.dumps(result))


@pytest.mark.parametrize(
    "lang, mixed, others",
    [("en", "Not every seed of", "The other configurations are measured cleanly"),
     ("es", "No todas las semillas de", "Las demás configuraciones se miden limpiamente")],
)  # fmt: skip
def test_a_configuration_whose_older_seeds_predate_clean_figures_is_named_as_such(tmp_path, lang, mixed, others):
    """Adam's seeds all have clean training figures; of Adadelta's, only seed 2 does (its others were trained
    before): the Discussion says Adadelta's curves read the running means, not that all its runs predate them."""
    root = make_study(tmp_path / "s", runs=OPTIMIZERS, seeds=3, subset=2000, name="seeds")
    for run in sorted(root.glob("*-seed*")):
        if "adam-" in run.name or run.name.endswith("seed2"):
            _record_clean_figures(run)
    adadelta, adam = an.load_study(root).groups
    assert adadelta.partly_clean and not adadelta.fit.clean and adam.fit.clean and not adam.partly_clean
    discussion = prose(render(root, lang), "discussion")
    assert re.search(rf"{mixed} [^.]*Adadelta[^.]*\(", read(discussion))
    assert others in discussion
    assert "predate clean" not in discussion and "son anteriores a las cifras" not in discussion  # rule_running's
