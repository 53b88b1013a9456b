"""The real full-length studies shipped in examples/results: the assignment renders, in both languages, with its
numbers; the follow-up studies hold every run they plan.

The files were written by one machine and are only read here: the test checks that the report shows the figures
the result files hold (in each language's number format), not any particular trajectory.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from cnnkit.report.localize import Formatter
from cnnkit.report.render import render_report

SHIPPED = Path(__file__).parents[1] / "examples" / "results" / "assignment"
PUBLISHED = {  # DESIGN.md: the original Keras runs (test loss, test accuracy)
    "mnist-pooling_cnn-adadelta-seed0": (0.4901, 0.8736),
    "mnist-strided_cnn-adadelta-seed0": (0.5062, 0.8735),
    "cifar10-pooling_cnn-adam-seed0": (2.8947, 0.6597),
    "cifar10-pooling_cnn-adagrad-seed0": (1.4304, 0.4914),
    "cifar10-pooling_cnn-adadelta-seed0": (1.9030, 0.3556),
}


def _results() -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text()) for path in sorted(SHIPPED.glob("*/result.json"))}


def test_the_seven_runs_ran_their_full_budget() -> None:
    results = _results()
    assert len(results) == 7
    for name, result in results.items():
        assert result["epochs"] == (10 if name.startswith("mnist") else 30), name
        assert len(result["history"]["val_loss"]) == result["epochs"] and result["subset"] is None
        assert result["batch_size"] == 128 and result["preset"] == "keras"
        assert not (SHIPPED / name / "checkpoints").exists()
        for file in ("config.json", "metrics.csv", "predictions.npz"):
            assert (SHIPPED / name / file).is_file(), (name, file)


@pytest.fixture(scope="module", params=["en", "es"])
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    study_dir = tmp_path_factory.mktemp(request.param) / "assignment"
    shutil.copytree(SHIPPED, study_dir, ignore=shutil.ignore_patterns("report"))
    (html,) = render_report(study_dir, formats=["html"], lang=request.param)
    return request.param, html.read_text(encoding="utf-8")


def test_report_shows_every_run_and_published_figure_in_its_language(report: tuple[str, str]) -> None:
    lang, html = report
    fmt = Formatter(lang)
    for name, result in _results().items():
        for value in (fmt.pct(result["test_accuracy"]), fmt.loss(result["test_loss"])):
            assert value in html, (lang, name, value)
        if name in PUBLISHED:
            loss, accuracy = PUBLISHED[name]
            assert fmt.loss(loss) in html and fmt.pct(accuracy) in html, (lang, name)
    assert fmt.int(1_625_866) in html and fmt.int(2_117_962) in html
    assert "/work/" not in html and "shared/data" not in html  # no path of the machine that trained it


@pytest.mark.parametrize("name", ["adadelta-lr", "cifar10-levers", "cifar10-tune"])
def test_a_shipped_follow_up_study_holds_every_planned_run_at_full_length(name: str) -> None:
    """Each run the built-in study plans is shipped, under the name it plans, finished, naming its data by file
    name and hash, not by a path of the machine that trained it."""
    from cnnkit.plugins import create_plugin_manager

    registries = create_plugin_manager()[1]
    study = registries.studies.get(name)
    study_dir = SHIPPED.parent / name
    if study.search is None:
        planned = {config.checked(registries).dir_name: config for config, _ in study.expand()}
    else:  # the search's confirmation: the baseline as the study plans it, the tuned runs as its trials chose them
        from cnnkit.studies.search import confirmation_plan

        planned = {c.checked(registries).dir_name: c for c, _ in confirmation_plan(study.search, [], None, None, None)}
        manifest = json.loads((study_dir / "study.json").read_text())
        tuned = [run for run in manifest["runs"] if run["role"] == "tuned"]
        with (study_dir / "trials.csv").open() as table:
            complete = [row for row in csv.DictReader(table) if row["state"] == "complete"]
        best = max(complete, key=lambda row: float(row["value"]))
        assert len(tuned) == study.search.confirm.seeds and {run["trial"] for run in tuned} == {int(best["number"])}
        planned |= {run["dir"]: SimpleNamespace(epochs=study.search.base.template.epochs) for run in tuned}
    shipped = {path.parent.name: json.loads(path.read_text()) for path in study_dir.glob("*/result.json")}
    assert sorted(shipped) == sorted(planned)
    for run, result in shipped.items():
        assert len(result["history"]["val_loss"]) == planned[run].epochs == result["epochs"], run
        assert 0.1 < result["test_accuracy"] <= 1.0, run
        config = (study_dir / run / "config.json").read_text()
        assert "/" not in json.loads(config)["data"]["source"] and '"sha256"' in config, run
