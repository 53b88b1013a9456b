"""The report's "Hyperparameter search" part: its findings from a search study's files (trials, importances,
the confirmation with Welch's interval) and its template, on a synthetic search study (nothing trains)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixtures import make_study

from cnnkit.results.stats import welch_interval
from cnnkit.results.trials import TrialRow, write_trials_table
from cnnkit.states import TrialState
from cnnkit.studies.search_spec import Budget, Choice, Confirm, Range, Search
from cnnkit.studies.study import RunSpec

SEARCH = Search(
    base=RunSpec("mnist", "pooling_cnn", "adam", epochs=2),
    space={"lr": Range(1e-4, 1e-2, log=True), "dropout": Range(0.0, 0.5), "augment": Choice([(), ("flip", "crop")])},
    trials=8,
    budget=Budget(epochs=2),
    confirm=Confirm(top=1, seeds=3, baseline=True),
)
TRIALS = [
    TrialRow(0, TrialState.COMPLETE, 0.90, {"lr": 0.0002, "dropout": 0.40, "augment": ()}, 2),
    TrialRow(1, TrialState.COMPLETE, 0.35, {"lr": 0.0030, "dropout": 0.25, "augment": ("flip", "crop")}, 2),
    TrialRow(2, TrialState.PRUNED, 1.40, {"lr": 0.0001, "dropout": 0.10, "augment": ()}, 1, pruned_epoch=1),
    TrialRow(3, TrialState.COMPLETE, 0.60, {"lr": 0.0010, "dropout": 0.05, "augment": ()}, 2),
    TrialRow(4, TrialState.COMPLETE, 0.42, {"lr": 0.0050, "dropout": 0.30, "augment": ("flip", "crop")}, 2),
    TrialRow(
        5, TrialState.PRUNED, 1.10, {"lr": 0.0003, "dropout": 0.45, "augment": ("flip", "crop")}, 1, pruned_epoch=1
    ),
    TrialRow(6, TrialState.COMPLETE, 0.50, {"lr": 0.0020, "dropout": 0.20, "augment": ()}, 2),
    TrialRow(7, TrialState.FAILED, None, {"lr": 0.0090, "dropout": 0.00, "augment": ()}, 0),
]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tuned = {"lr": 0.003, "dropout": 0.25, "augment": ("flip", "crop")}
    runs = [("mnist", "pooling_cnn", "adam", 2, None, tuned), ("mnist", "pooling_cnn", "adam", 2, None)]
    path = make_study(tmp_path_factory.mktemp("search") / "tiny", runs, seeds=3, name="tiny")
    manifest = json.loads((path / "study.json").read_text())
    for entry in manifest["runs"]:
        tuned_run = entry.get("dropout") == 0.25
        entry.update({"role": "tuned", "trial": 1, "rank": 1} if tuned_run else {"role": "baseline", "trial": None})
    manifest["search"] = {**SEARCH.record(), "storage": {"journal": "optuna-journal.log"}}
    (path / "study.json").write_text(json.dumps(manifest))
    write_trials_table(path, list(SEARCH.space), TRIALS)
    return path


def test_the_findings_count_the_trials_name_the_best_and_rank_the_settings(study_dir: Path) -> None:
    from cnnkit.report.search import search_findings

    found = search_findings(study_dir)
    assert found is not None
    assert (found.planned, found.complete, found.pruned, found.failed, found.running) == (8, 5, 2, 1, 0)
    assert found.sampler == "tpe" and found.pruner == "median" and found.metric == "val_loss"
    assert found.best is not None and found.best.number == 1
    assert found.best_settings() == [("lr", 0.003), ("dropout", 0.25), ("augment", ("flip", "crop"))]
    assert found.importances is not None and {i.setting for i in found.importances} == {"lr", "dropout", "augment"}
    assert sum(i.importance for i in found.importances) == pytest.approx(1.0)
    assert [d.kind for d in found.space] == ["range", "range", "choice"] and found.space[0].log


def test_the_confirmation_is_tuned_against_baseline_with_welchs_interval(study_dir: Path) -> None:
    from cnnkit.report.search import search_findings
    from cnnkit.results.runs import load_study

    found = search_findings(study_dir)
    assert found is not None
    runs = load_study(study_dir).runs
    accuracy = {
        role: [r.result["test_accuracy"] for r in runs if r.config["role"] == role] for role in ("tuned", "baseline")
    }
    (c,) = found.confirmation("test_accuracy")
    assert c.trial == 1 and c.tuned.n == 3 and c.baseline.n == 3
    assert c.interval == pytest.approx(welch_interval(accuracy["tuned"], accuracy["baseline"]))
    assert c.gain == (c.interval[0] > 0) and found.gain == c.gain  # a gain only when the interval excludes zero
    (loss,) = found.confirmation("test_loss")
    assert loss.gain == (loss.interval[1] < 0)


def test_no_search_no_findings(tmp_path: Path) -> None:
    from cnnkit.report.search import search_findings

    assert search_findings(make_study(tmp_path / "plain")) is None


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_part_renders_the_trials_the_pruned_ones_and_the_importances(study_dir: Path, lang: str) -> None:
    from cnnkit.plugins import get_registries
    from cnnkit.report import analysis as an
    from cnnkit.report.catalog import load_text
    from cnnkit.report.render import LONG_TABLE, _environment, build_context
    from cnnkit.report.search import search_figures, search_findings

    found = search_findings(study_dir)
    assert found is not None
    figures = search_figures(found, lang)
    assert figures["history"].startswith("<svg") and figures["importance"].startswith("<svg")
    env = _environment(lang)
    context = build_context(an.load_study(study_dir), load_text(lang), lang, get_registries())
    html = env.get_template("partials/search.j2").render({**context, "long_table": LONG_TABLE})
    assert html.count("<tr") >= 1 + len(TRIALS) and "PED-ANOVA" in html
    assert ("pruned" if lang == "en" else "podada") in html  # a trial (prueba) is podada in Spanish
    verdict = "beat the baseline" if found.gain else "cannot be told apart"
    assert lang != "en" or verdict in html
    conclusion = env.from_string('{% import "partials/search.j2" as sp %}{{ sp.conclusion(search) }}')
    said = conclusion.render(search=found)
    assert lang != "en" or ("Tuning paid off" in said) == found.gain
    assert figures == search_figures(found, lang)  # deterministic: the same files, the same figures


def test_status_lists_the_trials_with_their_state_value_and_settings(study_dir: Path) -> None:
    from cnnkit.studies.status import format_status, study_status

    status = study_status(study_dir)
    assert [(t.number, t.state) for t in status.trials][:3] == [(0, "complete"), (1, "complete"), (2, "pruned")]
    assert status.trials[1].params == {"lr": 0.003, "dropout": 0.25, "augment": ["flip", "crop"]}
    text = format_status(status)
    assert "Search: 7 of 8 trials finished (5 complete, 2 pruned), 0 running, 1 failed" in text
    assert "best: trial 1, val_loss 0.3500" in text
    assert any(line.split()[:4] == ["2", "pruned", "(epoch", "1)"] for line in text.splitlines())
    assert "flip+crop" in text and "Confirmation runs:" in text
    assert json.loads(json.dumps(status.as_dict()))["trials"][2]["pruned_epoch"] == 1


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_report_has_the_search_part_after_the_results_and_its_conclusion(study_dir: Path, lang: str) -> None:
    from cnnkit.report.render import render_report

    html = render_report(study_dir, formats=["html"], lang=lang)[0].read_text(encoding="utf-8")
    results, search, conclusions = (html.index(f'id="{s}"') for s in ("results", "search", "conclusions"))
    assert results < search < conclusions
    said = html[conclusions:].split("</section>")[0]
    assert ("Tuning paid off" if lang == "en" else "El afinado compensó") in said


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_abstract_answers_with_the_search_and_its_confirmation(study_dir: Path, lang: str, tmp_path: Path) -> None:
    from test_report import prose

    from cnnkit.report.render import render_report
    from cnnkit.report.search import search_findings

    found = search_findings(study_dir)
    assert found is not None and found.best is not None and found.confirmations
    html = render_report(study_dir, formats=["html"], lang=lang, out=tmp_path)[0].read_text(encoding="utf-8")
    abstract = prose(html, "abstract")
    said = {
        "en": f"A search of {found.finished} trials ({found.complete} complete, {found.pruned} pruned)",
        "es": f"Una búsqueda de {found.finished} ensayos ({found.complete} completos, {found.pruned} podados)",
    }
    assert said[lang] in abstract
    assert {"en": f"trial {found.best.number}", "es": f"ensayo {found.best.number}"}[lang] in abstract
    assert {"en": "On the test set, over seeds", "es": "En el conjunto de test, con varias semillas"}[lang] in abstract


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_confirmation_names_its_configurations_by_their_role(tmp_path: Path, lang: str) -> None:
    """Labels say "tuned (trial 1)" and "baseline", not the searched values (the baseline has no searched lr, and a
    searched 0.0031234 would read 0.003); running text says "the baseline"; the setup table keeps the tuned values,
    to three significant digits."""
    from test_report import prose
    from test_report_pages import table_cells

    from cnnkit.report.render import render_report

    tuned = {"lr": 0.0031234, "dropout": 0.25, "augment": ("flip", "crop")}
    runs = [("mnist", "pooling_cnn", "adam", 2, None, tuned), ("mnist", "pooling_cnn", "adam", 2, None)]
    path = make_study(tmp_path / "roles", runs, seeds=2, name="roles")
    manifest = json.loads((path / "study.json").read_text())
    for entry in manifest["runs"]:
        entry.update({"role": "tuned", "trial": 1, "rank": 1} if entry.get("dropout") else {"role": "baseline"})
    manifest["search"] = {**SEARCH.record(), "storage": {"journal": "optuna-journal.log"}}
    (path / "study.json").write_text(json.dumps(manifest))
    write_trials_table(path, list(SEARCH.space), TRIALS)

    html = render_report(path, formats=["html"], lang=lang, out=tmp_path / "out")[0].read_text(encoding="utf-8")
    words = {
        "en": ("tuned (trial 1)", "baseline", "lr 0.00312", "the tuned configuration (trial 1)", "the baseline"),
        "es": (
            "ajustada (ensayo 1)",
            "línea base",
            "lr 0,00312",
            "la configuración ajustada (ensayo 1)",
            "la línea base",
        ),
    }[lang]
    tuned_label, baseline_label, tuned_lr, tuned_np, baseline_np = words
    labels = {" ".join(text.split()) for _, text in table_cells(html)}
    assert f"MNIST · net_1 · Adam · {tuned_label}" in labels and f"MNIST · net_1 · Adam · {baseline_label}" in labels
    assert not any("lr 0.003 " in label or label.endswith("lr 0.003") or "lr 0.001" in label for label in labels)
    setup = html.split('<table class="setup">')[1].split("</table>")[0]
    assert tuned_lr in setup and tuned_label not in setup
    text = prose(html, "discussion", "conclusions")
    assert tuned_np in text and baseline_np in text
