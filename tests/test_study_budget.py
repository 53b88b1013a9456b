"""A study run with another budget than its plan's goes to a directory of its own (issue 27), and a refused run
directory says what --fresh would delete, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli, write_mnist_npz

from cnnkit.errors import RunError
from cnnkit.plugins import get_registries
from cnnkit.studies.study import budget_name, load_study_file

ONE = 'name = "one"\n[defaults]\ndataset = "mnist"\nepochs = 1\nsubset = 300\n[[runs]]\narchitecture = "net_2"\n'


def test_a_budget_other_than_the_plan_names_a_directory_of_its_own(tmp_path: Path) -> None:
    assignment = get_registries().studies.get("assignment")  # MNIST 10 epochs, CIFAR-10 30, the whole sets
    assert budget_name(assignment) == "assignment"
    assert budget_name(assignment, epochs=1, subset=2000) == "assignment-epochs1-subset2000"
    assert budget_name(assignment, subset=500) == "assignment-subset500"
    assert budget_name(assignment, epochs=10) == "assignment-epochs10"  # CIFAR-10's 30 epochs differ
    (tmp_path / "one.toml").write_text(ONE)
    one = load_study_file(tmp_path / "one.toml")
    assert budget_name(one, epochs=1, subset=300) == "one"  # the plan's own budget
    assert budget_name(one, epochs=2, subset=300) == "one-epochs2"


@pytest.mark.slow
def test_a_quick_look_never_touches_the_full_studys_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_mnist_npz(tmp_path)
    (tmp_path / "one.toml").write_text(ONE)
    args = ["run", "--study", str(tmp_path / "one.toml"), "--out", str(tmp_path / "runs"), "--data-dir", str(tmp_path)]
    args += ["--jobs", "1", "--quiet", "--report-format", "html"]
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    full = tmp_path / "runs" / "one"
    before = {path: path.read_bytes() for path in full.rglob("*") if path.is_file()}
    code, out, err = cli(capsys, *args, "--epochs", "2")
    assert code == 0, err
    quick = tmp_path / "runs" / "one-epochs2"
    assert out.splitlines()[-1] == f"report: {quick / 'report' / 'report.html'}"
    assert json.loads((quick / "mnist-strided_cnn-adam-seed0" / "result.json").read_text())["epochs"] == 2
    assert json.loads((quick / "study.json").read_text())["name"] == "one"  # the study it is a budget of
    assert {path: path.read_bytes() for path in full.rglob("*") if path.is_file()} == before


def test_a_refused_run_directory_says_what_fresh_would_delete(tmp_path: Path) -> None:
    from report_fixtures import make_study

    from cnnkit.training.runner import check_run_directory
    from cnnkit.training.settings import run_config

    study = make_study(tmp_path / "assignment")
    run = study / "mnist-pooling_cnn-adam-seed0"
    other = run_config("mnist", "pooling_cnn", optimizer="adam", epochs=3)
    with pytest.raises(RunError) as refused:
        check_run_directory(run, other, fresh=False)
    assert str(refused.value).endswith(
        "epochs 10 there vs 3 now); --fresh would delete that finished run (its result and checkpoints) and train "
        "this one instead, or --out writes this one elsewhere"
    )
    (run / "result.json").unlink()
    with pytest.raises(RunError) as refused:
        check_run_directory(run, other, fresh=False)
    assert "; --fresh would delete its 10 trained epochs and start this one over, or --out" in str(refused.value)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_refusal_is_printed_once(tmp_path: Path, jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_mnist_npz(tmp_path)
    study = tmp_path / "one.toml"
    study.write_text(ONE)
    args = ["run", "--study", str(study), "--out", str(tmp_path / "runs"), "--data-dir", str(tmp_path), "--quiet"]
    assert cli(capsys, *args, "--jobs", "1", "--report-format", "html")[0] == 0
    study.write_text(
        ONE.replace("epochs = 1", "epochs = 2").replace('"net_2"\n', '"net_2"\n[[runs]]\narchitecture = "net_1"\n')
    )
    code, _, err = cli(capsys, *args, "--jobs", jobs)
    assert code == 2
    assert err.count("holds a run with another configuration") == 1, err
    assert "--fresh would delete that finished run" in err
