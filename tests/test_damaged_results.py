"""Damaged and degenerate results, read soundly by the results package (issue 27): a result.json with a field of the
wrong type is damaged, not finished; `cnnkit report` names each damaged run in one line and refuses a study without
a finished run; a run that predicts one class is recognised as degenerate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

from cnnkit.results.reading import degeneracy, finished_result, result_problem, run_degeneracy
from cnnkit.results.runs import load_study


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    from report_fixtures import make_study

    return make_study(tmp_path / "assignment")


def set_field(run_dir: Path, **fields: object) -> None:
    path = run_dir / "result.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"test_accuracy": "x"}, "test_accuracy is the text 'x', not a number from 0 to 1"),
        ({"test_loss": None}, "test_loss is null, not a number"),
        ({"best_epoch": 2.5}, "best_epoch is 2.5, not a whole number"),
        ({"test_accuracy": True}, "test_accuracy is true"),
        ({"history": {"val_loss": [0.1]}}, "history's train_loss, train_accuracy, val_accuracy are not a list"),
        ({"history": []}, "history is a list, not an object of curves"),
    ],
)
def test_a_result_json_with_a_field_of_the_wrong_type_is_damaged_not_finished(
    study_dir: Path, fields: dict[str, object], says: str
) -> None:
    run = study_dir / "mnist-pooling_cnn-adam-seed0"
    assert result_problem(run) is None and finished_result(run) is not None
    set_field(run, **fields)
    assert says in (result_problem(run) or "")
    assert finished_result(run, quiet=True) is None


def test_missing_runs_carry_their_reason_damaged_or_not_finished(study_dir: Path) -> None:
    (study_dir / "mnist-pooling_cnn-adam-seed0" / "result.json").write_text('{"test_loss": 0.1, "test_acc')
    set_field(study_dir / "mnist-strided_cnn-adam-seed0", test_accuracy="x")
    (study_dir / "cifar10-pooling_cnn-adam-seed0" / "result.json").unlink()
    study = load_study(study_dir)
    reasons = {run.dir: run.reason for run in study.missing}
    assert reasons["mnist-pooling_cnn-adam-seed0"].startswith("damaged: result.json: not valid JSON (")
    assert reasons["mnist-strided_cnn-adam-seed0"] == (
        "damaged: result.json: test_accuracy is the text 'x', not a number from 0 to 1"
    )
    assert reasons["cifar10-pooling_cnn-adam-seed0"] == "not finished"
    assert [run.dir for run in study.damaged] == ["mnist-pooling_cnn-adam-seed0", "mnist-strided_cnn-adam-seed0"]
    assert len(study.runs) == 4


def test_report_names_each_damaged_run_in_one_line_and_renders_the_rest(
    study_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (study_dir / "mnist-pooling_cnn-adam-seed0" / "result.json").write_text('{"test_loss": 0.1, "test_acc')
    set_field(study_dir / "mnist-strided_cnn-adam-seed0", test_accuracy="x")
    code, out, err = cli(capsys, "report", str(study_dir), "--format", "html")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "internal error" not in err
    assert lines[0].startswith("cnnkit: mnist-pooling_cnn-adam-seed0: damaged: result.json: not valid JSON (")
    assert lines[1] == (
        "cnnkit: mnist-strided_cnn-adam-seed0: damaged: result.json: test_accuracy is the text 'x', "
        "not a number from 0 to 1; the report leaves it out"
    )
    assert out.strip() == f"report: {study_dir / 'report' / 'report.html'}"
    html = (study_dir / "report" / "report.html").read_text(encoding="utf-8")
    missing = html.split('<ul class="missing">')[1].split("</ul>")[0]
    assert "<code>mnist-strided_cnn-adam-seed0</code>: damaged: its result.json is there but unusable" in missing
    assert "test_accuracy is the text &#39;x&#39;, not a number from 0 to 1" in missing  # the report says why


def test_status_reads_a_damaged_result_json_without_an_internal_error(
    study_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_field(study_dir / "mnist-strided_cnn-adam-seed0", test_accuracy="x", test_loss="y")
    code, out, err = cli(capsys, "status", str(study_dir))
    assert code == 0 and not err, err
    line = next(line for line in out.splitlines() if "mnist-strided_cnn-adam-seed0" in line)
    assert "interrupted" in line and "result.json is damaged (test_loss is the text 'y'" in line


def test_report_refuses_a_study_without_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from report_fixtures import ASSIGNMENT_RUNS, make_study, run_dir

    names = [run_dir(dataset, arch, opt) for dataset, arch, opt, *_ in ASSIGNMENT_RUNS]
    study = make_study(tmp_path / "assignment", missing=names)
    code, out, err = cli(capsys, "report", str(study), "--format", "html")
    assert code == 2 and not out
    first, *status = err.strip().splitlines()
    assert first == f"cnnkit: error: {study} has no finished run to report on; cnnkit status says:"
    assert status[0] == f"Study assignment ({study}): 0 finished, 0 running, 0 interrupted, 7 pending"
    assert len(status) == 1 + 7 + 2  # the headline, a line per run, the time left and how to resume
    assert not (study / "report").exists()


def predictions_file(run: Path, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    empty = np.zeros((0, 28, 28, 1), np.float32)
    np.savez(
        run / "predictions.npz", y_true=y_true, y_pred=y_pred, misclassified_images=empty,
        misclassified_true=y_true[:0], misclassified_pred=y_pred[:0], class_names=np.array([str(i) for i in range(10)]),
    )  # fmt: skip


def test_a_run_that_predicts_one_class_is_degenerate(study_dir: Path) -> None:
    run = study_dir / "mnist-pooling_cnn-adam-seed0"
    y_true = np.array([1] * 1135 + [c for c in range(10) if c != 1] * 985)[:10_000]  # class 1: 11.35 %
    predictions_file(run, y_true, np.ones_like(y_true))
    set_field(run, test_accuracy=0.1135)
    found = run_degeneracy(run, json.loads((run / "result.json").read_text()))
    assert found is not None and found.degenerate and found.one_class and found.near_majority
    assert found.majority_class == 1 and found.majority_share == pytest.approx(0.1135)
    assert found.why == "100.0% of its test predictions are class 1"
    stored = next(r for r in load_study(study_dir).runs if r.dir == run.name)
    assert stored.degenerate and stored.degeneracy == found


def test_degenerate_by_accuracy_near_the_majority_share_but_not_a_learned_run() -> None:
    from cnnkit.results.reading import Predictions

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 5000)
    guess = np.where(rng.random(5000) < 0.5, y_true, rng.integers(0, 10, 5000))  # spread over classes, ~55 % right
    names = tuple(str(i) for i in range(10))

    def of(y_pred: np.ndarray) -> Predictions:
        empty = np.zeros((0, 28, 28, 1))
        return Predictions(y_true, y_pred, empty, y_true[:0], y_true[:0], names)

    assert not degeneracy(of(guess)).degenerate
    chance = rng.integers(0, 10, 5000)  # no class above 99 %, but accuracy at the majority's share (~10 %)
    share = np.bincount(y_true).max() / 5000
    found = degeneracy(of(chance), test_accuracy=share + 0.004)
    assert found.degenerate and found.near_majority and not found.one_class
    assert "within 1 point of the majority class's share" in found.why
    assert not degeneracy(of(chance), test_accuracy=share + 0.02).degenerate


def test_status_and_the_closing_table_note_a_degenerate_run(
    study_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnkit.console.study_progress import summary_table
    from cnnkit.training.runner import RunOutcome

    run = study_dir / "mnist-pooling_cnn-adam-seed0"
    y_true = np.arange(10_000) % 10
    predictions_file(run, y_true, np.full_like(y_true, 3))
    set_field(run, test_accuracy=0.1)
    code, out, _ = cli(capsys, "status", str(study_dir))
    line = next(line for line in out.splitlines() if run.name in line)
    assert code == 0 and line.endswith("; degenerate: 100.0% of its test predictions are class 3")
    outcomes = [
        RunOutcome(path, json.loads((path / "result.json").read_text())) for path in sorted(study_dir.glob("*-seed0"))
    ]
    notes = [line for line in summary_table(outcomes, 60.0).splitlines() if line.startswith("note:")]
    assert notes == [f"note: {run.name} is degenerate: 100.0% of its test predictions are class 3"]


def test_the_report_never_calls_a_degenerate_run_best(study_dir: Path) -> None:
    """MNIST's best final accuracy is Adam with net_1 in the fixture; once that run predicts one class only, the
    abstract names another as best and says that one learned next to nothing."""
    from cnnkit.report.render import render_report

    run = study_dir / "mnist-pooling_cnn-adam-seed0"
    y_true = np.array([1] * 1135 + [c for c in range(10) if c != 1] * 985)[:10_000]
    predictions_file(run, y_true, np.ones_like(y_true))
    set_field(run, test_accuracy=0.999)  # even a figure that would top the table: it is not believed best
    html = render_report(study_dir, formats=["html"])[0].read_text(encoding="utf-8")
    abstract = html.split('class="abstract"')[1].split("</section>")[0]
    assert "learned next to nothing" in abstract and "MNIST · net_1 · Adam" in abstract
    assert "99.90%" not in abstract.split("learned next to nothing")[0]  # not the best accuracy it names
