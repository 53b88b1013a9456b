"""Report rendering on synthetic studies: content, languages, self-containment, determinism, PDF, browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from markupsafe import escape
from report_fixtures import ASSIGNMENT_RUNS, make_study

from cnnkit import analysis as an
from cnnkit.errors import UsageError
from cnnkit.report import fmt_loss, fmt_pct, load_text, render_report

SECTIONS = {
    "en": ["Abstract", "Keywords", "Introduction", "Methods", "Results", "Discussion", "Conclusions",
           "References", "Appendix"],
    "es": ["Resumen", "Palabras clave", "Introducción", "Métodos", "Resultados", "Discusión", "Conclusiones",
           "Referencias", "Apéndice"],
}  # fmt: skip


def esc(text: str, n: int = 40) -> str:
    """The first n characters of a translated sentence as they appear in the (escaped) HTML."""
    return str(escape(text[:n]))


REFERENCE_VALUES = [
    "0.4901",
    "87.36 %",
    "0.5062",
    "87.35 %",
    "2.8947",
    "65.97 %",
    "1.4304",
    "49.14 %",
    "1.9030",
    "35.56 %",
]


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
    assert re.search(r"\d+\.\d{2} %", html) and not re.search(r"\d\.\d{3,} %", html)


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
    assert fmt_pct(an.STRONG_VAL_LOSS_RISE) in html and "5.00 pp" in html
    for key in ("original", "keras_defaults", "mnist_puzzle"):
        assert esc(t["discussion"][key]) in html
    assert "Zeiler" in html and "Springenberg" in html


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
    root = make_study(tmp_path / "s", runs=ASSIGNMENT_RUNS[:3])
    first = [p.read_bytes() for p in render_report(root)]
    second = [p.read_bytes() for p in render_report(root)]
    assert first == second
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
    t = load_text("en")
    assert "95 % CI" in html
    if rk.steps[0].status == "noise":
        assert "no winner" in html and "more than the 95 % interval" not in html
    else:
        assert "more than the 95 % interval" in html
    for assignment_only in (t["discussion"]["mnist_puzzle"], t["discussion"]["original"], t["intro"]["task"]):
        assert esc(assignment_only) not in html


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
