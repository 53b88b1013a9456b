"""Report rendering on synthetic studies: content, languages, self-containment, determinism, PDF, browser."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections import Counter
from html import unescape
from pathlib import Path

import pytest
from markupsafe import escape
from report_fixtures import ASSIGNMENT_RUNS, make_study

from cnnkit.errors import UsageError
from cnnkit.report import analysis as an
from cnnkit.report.localize import Formatter
from cnnkit.report.render import load_text, render_report

EN = Formatter("en")
fmt_loss, fmt_pct = EN.loss, EN.pct

SECTIONS = {
    "en": ["Abstract", "Keywords", "Introduction", "Methods", "Results", "Discussion", "Conclusions",
           "References", "Appendix"],
    "es": ["Resumen", "Palabras clave", "Introducción", "Métodos", "Resultados", "Discusión", "Conclusiones",
           "Referencias", "Apéndice"],
}  # fmt: skip


def nm_text(lang: str, architecture: str) -> str:
    from cnnkit.plugins import create_plugin_manager  # the network's plugin names it in running text

    return create_plugin_manager()[1].architectures.entry(architecture).reader.common_in(lang)


def esc(text: str, n: int = 40) -> str:
    """The first n characters of a translated sentence as they appear in the (escaped) HTML."""
    return str(escape(text[:n]))


REFERENCE_VALUES = ["0.4901", "87.36%", "0.5062", "87.35%", "2.8947", "65.97%", "1.4304", "49.14%", "1.9030", "35.56%"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, str]:
    root = make_study(tmp_path_factory.mktemp("r") / "assignment")
    paths = render_report(root)
    assert [p.name for p in paths] == ["report.html", "report.pdf"]
    return root, paths[0].read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", ["en", "es"])
def test_imrad_headings(tmp_path, lang):
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:2])
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", html)
    assert [h for h in SECTIONS[lang] if h not in headings and f"<strong>{h}:" not in html] == []
    assert f'<html lang="{lang}">' in html


def test_every_run_number_formatted(rendered):
    root, html = rendered
    study = an.load_study(root)
    assert len(study.runs) == 7
    for run in study.runs:
        for value in (fmt_loss(run["test_loss"]), fmt_pct(run["test_accuracy"]), fmt_pct(run["best_test_accuracy"])):
            assert value in html, (run.dir, value)
    assert re.search(r"\d+\.\d{2}%", html) and not re.search(r"\d\.\d{3,}\s?%", html)


def test_reference_values_and_layer_totals(rendered):
    _, html = rendered
    for value in REFERENCE_VALUES:
        assert value in html
    assert "1,625,866" in html and "2,117,962" in html


def test_self_contained(rendered):
    _, html = rendered
    assert html.count("<svg") >= 7 * 2 + 3
    assert "data:image/png;base64," in html
    assert not re.search(r"https?://", html)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html)
    assert "<link" not in html and "<script" not in html


def test_overfitting_rule_and_assignment_discussion(rendered):
    _, html = rendered
    t = load_text("en")
    # thresholds read as chosen, "10%" and "5 pp", not as measured "10.00%"
    assert f"at least {EN.set_pct(an.STRONG_VAL_LOSS_RISE)} above" in html and "10%" in html
    assert f"at least {EN.set_pp(an.STRONG_ACC_GAP)}" in html and "5\xa0pp" in html and "10.00%" not in html
    assert esc(t["discussion"]["keras_defaults"]) in html
    from cnnkit_plugins.studies import ASSIGNMENT_NOTES  # the assignment's own explanation, data of its study

    for note in ("explanation", "overfitting"):  # the original write-up's overfitting test: said of it alone
        assert esc(ASSIGNMENT_NOTES.text(note, "en")) in html
    assert "Zeiler" in html and "Springenberg" in html
    assert "weight decay) or data augmentation for CIFAR-10, where the networks overfit" in html  # what to try next


def test_pdf_valid_with_text(rendered):
    from pypdf import PdfReader

    root, _ = rendered
    reader = PdfReader(root / "report" / "report.pdf")
    assert len(reader.pages) >= 4
    text = "".join(page.extract_text() for page in reader.pages[:3])
    assert "Introduction" in text and "Methods" in text
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points


def test_spanish_report_complete(tmp_path):
    root = make_study(tmp_path / "s", missing=["cifar10-pooling_cnn-adagrad-seed0"])
    html = render_report(root, formats="html", lang="es")[0].read_text(encoding="utf-8")
    for english in ("Learning curves", "Test results", "Overfitting", "Missing runs", "Misclassified", "Per-class"):
        assert english not in html
    for spanish in ("Curvas de aprendizaje", "Sobreajuste", "Ejecuciones ausentes", "Exactitud por clase"):
        assert spanish in html


def test_missing_runs_named(tmp_path):
    missing = ["mnist-strided_cnn-adam-seed0", "cifar10-pooling_cnn-adagrad-seed0"]
    root = make_study(tmp_path / "s", missing=missing)
    html = render_report(root, formats=["html"])[0].read_text(encoding="utf-8")
    assert "Missing runs" in html
    for d in missing:
        assert d in html


def test_deterministic(tmp_path):
    """Same files in, byte-identical HTML out; the PDF reads the same (its embedded font subsets are not
    byte-stable across WeasyPrint calls here, with or without this change)."""
    from pypdf import PdfReader

    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:3])
    first = [p.read_bytes() for p in render_report(root)]
    second = [p.read_bytes() for p in render_report(root)]
    assert first[0] == second[0]
    pages = [[pg.extract_text() for pg in PdfReader(io.BytesIO(pdf[1])).pages] for pdf in (first, second)]
    assert pages[0] == pages[1]
    assert b"/CreationDate" not in first[1] or b"D:20" in first[1]


def test_source_date_epoch(tmp_path, monkeypatch):
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:1])
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    html = render_report(root, formats=["html"])[0].read_text(encoding="utf-8")
    assert 'content="2023-11-14T22:13:20Z"' in html


def test_generic_study_with_seeds_never_calls_noise_a_win(tmp_path):
    runs = [("mnist", "pooling_cnn", "sgd", 5, None), ("mnist", "pooling_cnn", "rmsprop", 5, None)]
    root = make_study(tmp_path / "s", runs=runs, seeds=3, name="third-party")
    (rk,) = an.rankings(an.load_study(root).groups, "optimizer", "test_accuracy")
    html = render_report(root, formats=["html"])[0].read_text(encoding="utf-8")
    assert "95 % CI" in html
    if rk.steps[0].status == "noise":
        assert "cannot be told apart with 3 seeds" in html and "did better than" not in html
    else:
        assert "did better than" in html and "cannot be told apart" not in html
    from cnnkit_plugins.studies import ASSIGNMENT_NOTES  # what the assignment study says of itself

    for note in ("explanation", "introduction", "overfitting"):
        assert esc(ASSIGNMENT_NOTES.text(note, "en")) not in html


def test_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="not a study"):
        render_report(tmp_path)
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:1])
    with pytest.raises(UsageError, match="en, es"):
        render_report(root, lang="fr")
    with pytest.raises(UsageError, match="html, pdf"):
        render_report(root, formats=["docx"])


def test_files_written_atomically(rendered):
    root, _ = rendered
    assert sorted(p.name for p in (root / "report").iterdir()) == ["report.html", "report.pdf"]


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed")
def test_chromium_renders_report(rendered, tmp_path):
    mpimg = pytest.importorskip("matplotlib.image")
    root, _ = rendered
    shot = tmp_path / "shot.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2400",
           (root / "report" / "report.html").resolve().as_uri()]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    img = mpimg.imread(shot)[..., :3]
    assert len({tuple(px) for px in img[::7, ::7].reshape(-1, 3).round(2).tolist()}) > 50
    assert (img < 0.9).any(axis=2).mean() > 0.02  # text and figures, not a blank page


# ----------------------------------------------------------------------------------------------- prose a reader sees
def prose(html: str, *sections: str) -> str:
    """The plain text of the named sections (tables left out), as a reader reads it."""
    out = []
    for sec in sections:
        found = re.search(rf'<section[^>]*(?:id|class)="{sec}"[^>]*>(.*?)</section>', html, re.S)
        assert found, sec
        body = re.sub(r"<table.*?</table>|<h\d[^>]*>.*?</h\d>", " ", found.group(1), flags=re.S)
        out.append(unescape(re.sub(r"<[^>]+>", " ", body)))
    return re.sub(r"\s+", " ", " ".join(out))


def sentence_patterns(text: str, names: list[str]) -> list[str]:
    """Each sentence with numbers and run/net/dataset names masked: what stays is the sentence's pattern."""
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, "N")
    text = re.sub(r"[+\-−]?\d[\d.,\u00a0 ]*\s?(%|pp)?", "#", text)
    text = re.sub(r"N( · N)+|N(, N)*( and | y )N|#(, #)*( and | y )#", "N", text)
    sentences = re.split(r"(?<=[.:;])\s+(?=[A-ZÁÉÍÓÚÑ¿N#])", text)
    return [s.strip() for s in sentences if len(s.split()) > 3]


def study_names(root: Path, lang: str) -> list[str]:
    t = load_text(lang)
    names = [v for table in t["names"].values() for v in table.values()]
    return [*names, "net_1", "net_2", "MNIST", "CIFAR-10"]


def quick_study(tmp_path: Path, epochs: int, name: str = "assignment") -> Path:
    """The assignment's seven runs on a short budget and a subset, as `cnnkit run --all --epochs N --subset 3000`."""
    runs = [(d, a, o, epochs, ref) for d, a, o, _, ref in ASSIGNMENT_RUNS]
    return make_study(tmp_path / name, runs=runs, subset=3000)


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("epochs", [3, 10])
def test_no_sentence_pattern_more_than_twice(tmp_path, lang, epochs):
    root = quick_study(tmp_path, epochs) if epochs == 3 else make_study(tmp_path / "s")
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    text = prose(html, "abstract", "discussion", "conclusions")
    counts = Counter(sentence_patterns(text, study_names(root, lang)))
    assert [(p, n) for p, n in counts.items() if n > 2] == []
    single_seed_refrain = {"en": "single seed", "es": "una sola semilla"}[lang]
    assert text.count(single_seed_refrain) == 1


@pytest.mark.parametrize("lang", ["en", "es"])
def test_plurals_and_sentence_case(tmp_path, lang):
    runs = [("mnist", "pooling_cnn", "adadelta", 1, None), ("mnist", "pooling_cnn", "adam", 1, None)]
    root = make_study(tmp_path / "s", runs=runs, subset=2000)
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    text = prose(html, "abstract", "introduction", "discussion", "conclusions")
    wrong = {"en": r"\b1 (epochs|runs|configurations)\b", "es": r"\b1 (épocas|ejecuciones|configuraciones)\b"}[lang]
    assert not re.search(wrong, text)
    right = {"en": "after 1 epoch", "es": "tras 1 época"}[lang]
    assert right in text
    assert {"en": "2 runs", "es": "2 ejecuciones"}[lang] in text
    # every sentence starts with a capital letter (or a figure)
    starts = re.findall(r"(?:^|[.!?]\s)([^\s])", text.strip())
    assert [c for c in starts if c.islower()] == []
    # several runs named: the verb agrees in the plural; one run: in the singular
    assert {"en": "overfit cannot be judged", "es": "sobreajustan: no hay"}[lang] in text
    single = make_study(tmp_path / "one", runs=runs[:1], subset=2000)
    html = render_report(single, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    text = prose(html, "abstract", "introduction", "discussion", "conclusions")
    assert {"en": "overfits cannot be judged", "es": "sobreajusta: no hay"}[lang] in text
    assert {"en": "1 run ", "es": "1 ejecución "}[lang] in text


@pytest.mark.parametrize("lang", ["en", "es"])
def test_overfitting_needs_three_epochs(tmp_path, lang):
    root = quick_study(tmp_path, 2)
    html = render_report(root, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    t = load_text(lang)
    text = prose(html, "abstract", "discussion", "conclusions")
    assert t["names"]["verdict"]["too_early"] in html
    for verdict in ("none", "mild", "strong"):
        assert f'class="verdict {verdict}"' not in html
    assert {"en": "cannot be judged yet", "es": "aún no puede juzgarse"}[lang] in text


@pytest.mark.parametrize("lang", ["en", "es"])
def test_published_figures_compared_only_at_their_budget(tmp_path, lang):
    fmt = Formatter(lang)
    quick = render_report(quick_study(tmp_path, 3), formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    text = prose(quick, "discussion", "conclusions")
    assert not re.search(r"[+\-−]\d+[.,]\d{2}\s?pp", text)  # no signed difference to a figure of another budget
    assert fmt.pct(0.8736) in quick  # the published figure still stands in the table, with its budget
    assert {"en": "10 epochs, whole training set, batch 128", "es": "10 épocas, conjunto de entrenamiento completo"}[
        lang
    ] in quick
    assert {"en": "the budgets differ", "es": "los presupuestos difieren"}[lang] in text
    full = render_report(make_study(tmp_path / "full"), formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    assert re.search(r"[+\-−]\d+[.,]\d{2}\s?pp", prose(full, "discussion"))


def test_spanish_numbers_and_dates(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    root = make_study(tmp_path / "s")
    for path in root.glob("*/result.json"):  # the day the runs finished, as result.json records it
        path.write_text(json.dumps({**json.loads(path.read_text()), "finished": "2023-11-14T22:13:20Z"}))
    html = render_report(root, formats=["html"], lang="es")[0].read_text(encoding="utf-8")
    assert "1.625.866" in html and "2.117.962" in html and "1,625,866" not in html
    assert "87,36\u00a0%" in html and not re.search(r"\d+\.\d{2}\s?%", html)
    assert "14 de noviembre de 2023" in html
    english = render_report(root, formats=["html"], lang="en")[0].read_text(encoding="utf-8")
    assert "November 14, 2023" in english and "1,625,866" in english


def test_data_files_named_without_machine_paths(tmp_path):
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:2])
    html = render_report(root, formats=["html"])[0].read_text(encoding="utf-8")
    assert "mnist.npz" in html and "/data/" not in html  # old config.json: the base name only
    cfg_path = root / "mnist-pooling_cnn-adam-seed0" / "config.json"
    config = json.loads(cfg_path.read_text())
    config["data"].update(source="/home/someone/secret/mnist.npz", files=[{"name": "mnist.npz", "sha256": "ab" * 32}])
    cfg_path.write_text(json.dumps(config))
    html = render_report(root, formats=["html"])[0].read_text(encoding="utf-8")
    assert "ab" * 32 in html and "/home/someone" not in html and "secret" not in html


# ----------------------------------------------------------------------------------------------- third-party studies
@pytest.fixture
def third_party(monkeypatch):
    """Registries of the built-ins plus a test plugin: a residual net and a dataset that carry ReaderInfo."""
    from report_fixtures import FASHION_READER, TINYRES_READER, residual_classifier

    from cnnkit import ReaderInfo, hookimpl
    from cnnkit.plugins import create_plugin_manager

    monkeypatch.setenv("CNNKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    tinyres = residual_classifier()

    class Plugin:
        @hookimpl
        def cnnkit_register_architectures(self, register):
            register("tinyres", tinyres, reader=ReaderInfo(**TINYRES_READER))

        @hookimpl
        def cnnkit_register_datasets(self, register):
            register("fashion_mnist", "cnnkit_fashion.datamodule:Nothing", reader=ReaderInfo(**FASHION_READER))

    return create_plugin_manager([Plugin()])[1], tinyres


@pytest.mark.parametrize("lang", ["en", "es"])
def test_third_party_net_against_net_1(tmp_path, third_party, lang):
    from report_fixtures import old_layer_rows

    from cnnkit.nets.counting import count_network

    registries, tinyres = third_party
    net = tinyres((1, 28, 28), 10).network
    runs = [("fashion_mnist", "pooling_cnn", "adam", 4, None), ("fashion_mnist", "tinyres", "adam", 4, None)]
    root = make_study(tmp_path / "s", runs=runs, name="resnet", models={"tinyres": old_layer_rows(net, (1, 28, 28))})
    html = render_report(root, formats=["html"], lang=lang, registries=registries)[0].read_text(encoding="utf-8")
    fmt = Formatter(lang)
    exact = count_network(net, (1, 28, 28)).macs
    networks = re.search(r'<table class="networks">.*?</table>', html, re.S).group(0)  # compared on their cost
    assert fmt.int(exact) in networks and "TinyRes" in prose(html, "discussion", "conclusions")
    assert re.search(rf'class="total".*?{re.escape(fmt.int(exact))}', html, re.S)
    text = prose(html, "abstract", "introduction", "discussion", "conclusions").lower()
    for stride_word in ("stride", "strided", "paso 2", "con paso", "max-pooling versus", "quarter", "cuarta parte"):
        assert stride_word not in text
    keywords = re.search(r'<meta name="keywords" content="([^"]*)"', html).group(1)
    assert "strided" not in keywords and "paso" not in keywords and "TinyRes" in keywords
    methods, references = prose(html, "methods"), prose(html, "references")
    for reader in ("TINYRES_READER", "FASHION_READER"):
        info = getattr(__import__("report_fixtures"), reader)
        assert info["display_name"] in methods and info["cite_as"] in methods
        assert info["summary"][lang] in methods
        assert info["citation"] in references
    assert "fashion_mnist" not in prose(html, "abstract", "discussion", "conclusions")
    # a plugin's proper name stands without an article; the report's own descriptive names keep theirs
    article = {"en": "the", "es": "la"}[lang]
    discussion = prose(html, "discussion", "conclusions")
    assert f"{article} TinyRes" not in discussion and f"{article} TinyRes" not in methods
    assert f"{article} {nm_text(lang, 'pooling_cnn')}" in discussion
    assert f"<strong>{nm_text(lang, 'pooling_cnn')[:1].upper()}" in html  # a Methods line opens with a capital


@pytest.mark.parametrize("lang", ["en", "es"])
def test_settings_read_as_written(tmp_path, lang):
    """A split reads "20%", a device "CPU, 2 threads" in the report's language, Adam's betas as one pair."""
    runs = [("mnist", "pooling_cnn", "adam", 3, None)]
    html = render_report(make_study(tmp_path / "s", runs=runs), formats=["html"], lang=lang)[0].read_text("utf-8")
    methods = prose(html, "methods")
    assert {"en": "the last 20% of the training", "es": "el último 20 %"}[lang] in methods
    assert {"en": "CPU, 2 threads", "es": "CPU, 2 hilos"}[lang] in methods
    assert {"en": "betas=(0.9, 0.999)", "es": "betas=(0,9; 0,999)"}[lang] in html
    assert "20.00" not in methods and "20,00" not in methods


def test_assignment_keeps_pooling_versus_stride(rendered):
    _, html = rendered
    t = load_text("en")
    assert f">{t['sections']['arch']}<" in html
    assert esc(t["discussion"]["macs_why_stride"]) in html
    assert "strided convolution" in re.search(r'<meta name="keywords" content="([^"]*)"', html).group(1)
