"""The Python API (cnnkit.run, run_study, load_study): the CLI's numbers and errors, tables a notebook can use."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import real_data_dir, write_mnist_npz
from report_fixtures import make_study

import cnnkit
from cnnkit.cli import main

ROOT = Path(__file__).parents[1]
SHIPPED = ROOT / "examples" / "results" / "assignment"
# (dataset, architecture, optimizer) -> final-weights test accuracy of the shipped full-length study (README's table)
SHIPPED_ACCURACY = {
    ("mnist", "pooling_cnn", "adadelta"): 0.8655,
    ("mnist", "strided_cnn", "adadelta"): 0.8547,
    ("mnist", "pooling_cnn", "adam"): 0.9874,
    ("mnist", "strided_cnn", "adam"): 0.9872,
    ("cifar10", "pooling_cnn", "adam"): 0.6419,
    ("cifar10", "pooling_cnn", "adagrad"): 0.4769,
    ("cifar10", "pooling_cnn", "adadelta"): 0.3482,
}


# ------------------------------------------------------------------------------------------ reading studies
def test_shipped_assignment_loads_as_a_table_of_its_seven_runs() -> None:
    frame = cnnkit.load_study(SHIPPED).to_pandas()
    assert len(frame) == 7
    shown = {
        (row.dataset, row.architecture, row.optimizer): round(row.test_accuracy, 4)
        for row in frame[["dataset", "architecture", "optimizer", "test_accuracy"]].itertuples()
    }
    assert shown == SHIPPED_ACCURACY
    adam = frame.set_index("run").loc["cifar10-pooling_cnn-adam-seed0"]
    assert (adam.epochs, adam.best_epoch, adam.stopped_epoch, adam.params) == (30, 4, 30, 2_117_962)
    assert adam.lr == pytest.approx(0.001)  # the preset's rate, as used
    assert adam.best_test_accuracy == pytest.approx(0.6727, abs=5e-5)


def test_repr_html_is_the_summary_table() -> None:
    shown = cnnkit.load_study(SHIPPED)._repr_html_()
    assert "<table" in shown and "</table>" in shown
    assert shown.count("<tr") == 1 + 7  # header and a row per configuration (one seed each)
    assert "<th>optimizer</th>" in shown and "<td>0.9874</td>" in shown
    assert "<th>preset</th>" not in shown  # the same for every run: not a column


def test_importing_and_loading_do_not_import_torch() -> None:
    code = (
        "import sys, cnnkit; cnnkit.load_study(sys.argv[1]).summary(); "
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", code, str(SHIPPED)], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"


def test_summary_gives_mean_and_sd_over_seeds(tmp_path: Path) -> None:
    runs = [("mnist", "pooling_cnn", "adam", 5, None), ("mnist", "pooling_cnn", "adadelta", 5, None)]
    study = cnnkit.load_study(make_study(tmp_path / "s", runs, seeds=3, name="seeds"))
    summary = study.summary()
    assert list(summary.optimizer) == ["adam", "adadelta"]
    assert list(summary.n) == [3, 3] and list(summary.seeds) == ["0,1,2", "0,1,2"]
    frame = study.to_pandas()
    adam = frame[frame.optimizer == "adam"].test_accuracy.to_numpy()
    assert summary.test_accuracy_mean[0] == pytest.approx(adam.mean())
    assert summary.test_accuracy_sd[0] == pytest.approx(adam.std(ddof=1))
    assert "seed" not in summary.columns
    assert f"{adam.mean():.4f} ± {adam.std(ddof=1):.4f}" in study._repr_html_()


def test_history_is_long_format_per_epoch(tmp_path: Path) -> None:
    study = cnnkit.load_study(make_study(tmp_path / "s", [("mnist", "strided_cnn", "adam", 4, None)], seeds=2))
    history = study.history()
    assert len(history) == 2 * 4 * 4  # runs x epochs x (train/val loss/accuracy)
    assert set(history.metric) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    run = study.runs[1]
    val = history[(history.run == run.name) & (history.metric == "val_loss")].sort_values("epoch")
    assert list(val.epoch) == [1, 2, 3, 4]
    assert list(val.value) == run.result["history"]["val_loss"]
    assert set(history.seed) == {0, 1} and set(history.architecture) == {"strided_cnn"}


def test_plot_curves_draws_a_row_per_dataset() -> None:
    figure = cnnkit.load_study(SHIPPED).plot_curves()
    axes = figure.get_axes()
    titles = [ax.get_title().split(" (")[0] for ax in axes]
    assert titles == ["mnist: loss", "mnist: accuracy", "cifar10: loss", "cifar10: accuracy"]
    cifar_loss = axes[2]
    assert len(cifar_loss.get_lines()) == 3 * 2  # three optimizers, validation and training
    adam_val = cifar_loss.get_lines()[0].get_ydata()
    shipped = json.loads((SHIPPED / "cifar10-pooling_cnn-adam-seed0" / "result.json").read_text())
    assert np.allclose(adam_val, shipped["history"]["val_loss"])
    assert [text.get_text() for text in cifar_loss.get_legend().get_texts()] == ["adam", "adagrad", "adadelta"]


def test_report_writes_the_html_report(tmp_path: Path) -> None:
    runs = [("mnist", "pooling_cnn", "adam", 3, None), ("mnist", "strided_cnn", "adam", 3, None)]
    study = cnnkit.load_study(make_study(tmp_path / "s", runs, name="two"))
    assert study.report() == [tmp_path / "s" / "report" / "report.html"]
    assert "<html" in (tmp_path / "s" / "report" / "report.html").read_text()


def test_a_partial_study_loads_its_finished_runs_and_says_what_is_missing(tmp_path: Path) -> None:
    path = make_study(tmp_path / "s", missing=["cifar10-pooling_cnn-adagrad-seed0", "mnist-strided_cnn-adam-seed0"])
    with pytest.warns(UserWarning, match=r"2 of 7 runs are not finished \(mnist-strided_cnn-adam-seed0, cifar10-"):
        study = cnnkit.load_study(path)
    assert study.missing == ["mnist-strided_cnn-adam-seed0", "cifar10-pooling_cnn-adagrad-seed0"]
    assert len(study.to_pandas()) == 5
    assert "not finished: mnist-strided_cnn-adam-seed0" in study._repr_html_()


def test_a_complete_study_loads_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cnnkit.load_study(SHIPPED).missing == []


# ------------------------------------------------------------------------------------------ errors
def test_a_directory_that_is_not_a_study_is_a_one_line_usage_error(tmp_path: Path) -> None:
    with pytest.raises(cnnkit.UsageError, match="is not a study directory") as caught:
        cnnkit.load_study(tmp_path)
    assert "\n" not in str(caught.value)


def test_an_unknown_setting_names_it_and_lists_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(cnnkit.UsageError) as caught:
        cnnkit.run("mnist", "net_1", epochs=1, batchsize=64, out=tmp_path)
    message = str(caught.value)
    assert message.startswith("unknown setting 'batchsize'; did you mean 'batch_size'?")
    assert "batch_size" in message and "val_split" in message and "accelerator" in message
    assert not (tmp_path / "single").exists()


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda out: cnnkit.run("mnist", "net_9", out=out), "unknown architecture 'net_9'"),
        (lambda out: cnnkit.run("mnist", "net_1", epochs=0, out=out), "^epochs must be an integer of at least 1"),
        (lambda out: cnnkit.run("mnist", "net_1", logger="wandb", out=out), "unknown logger 'wandb'"),
        (lambda out: cnnkit.run_study("no-such-study", out=out), "unknown study 'no-such-study'"),
        (lambda out: cnnkit.run_study("assignment", jobs=0, out=out), "^jobs must be an integer of at least 1"),
        (lambda out: cnnkit.run_study("assignment", epochs=0, out=out), "epochs must be a positive integer"),
        (lambda out: cnnkit.run_study("assignment", seeds=[], out=out), "seeds must be"),
        (lambda out: cnnkit.run_study("assignment", executor="slurm", out=out), "unknown executor 'slurm'"),
        (lambda out: cnnkit.run_study(out / "missing.toml", out=out), "cannot read study file"),
    ],
)
def test_bad_input_raises_the_cli_s_usage_error_in_the_api_s_words(tmp_path: Path, call, expected: str) -> None:
    with pytest.raises(cnnkit.UsageError, match=expected) as raised:
        call(tmp_path)
    assert "--" not in str(raised.value)  # keyword arguments, not the command's flags


# ------------------------------------------------------------------------------------------ training
def _data_dir(tmp_path: Path) -> Path:
    """The real MNIST when $CNNKIT_DATA_DIR has it, else a small learnable one."""
    try:
        return real_data_dir("mnist.npz")
    except pytest.skip.Exception:
        write_mnist_npz(tmp_path)
        return tmp_path


@pytest.mark.slow
def test_run_gives_the_cli_s_figures_to_the_last_digit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data_dir(tmp_path / "data")
    result = cnnkit.run("mnist", "net_2", epochs=1, subset=1000, out=tmp_path / "api", data_dir=data)
    api = capsys.readouterr()
    api_out = api.out
    assert "Epoch 1/1 - " in api.err and "\r" not in api.err  # plain lines: the test's stream is no terminal
    args = ["run", "mnist", "net_2", "--epochs", "1", "--subset", "1000", "--out", str(tmp_path / "cli")]
    assert main([*args, "--data-dir", str(data)]) == 0
    cli_out = capsys.readouterr().out
    test_lines = [line for line in api_out.splitlines() if line.startswith("Test: ")]
    assert test_lines and test_lines == [line for line in cli_out.splitlines() if line.startswith("Test: ")]
    cli_dir = tmp_path / "cli" / "single" / "mnist-strided_cnn-adam-seed0"
    cli = json.loads((cli_dir / "result.json").read_text())
    assert result.dir == tmp_path / "api" / "single" / "mnist-strided_cnn-adam-seed0"
    assert (result.test_accuracy, result.test_loss) == (cli["test_accuracy"], cli["test_loss"])
    assert (result.best_epoch, result.best_test_accuracy) == (cli["best_epoch"], cli["best_test_accuracy"])
    assert result.history == cli["history"]
    assert result.config["run"] == json.loads((cli_dir / "config.json").read_text())["run"]

    again = cnnkit.run("mnist", "net_2", epochs=1, subset=1000, out=tmp_path / "api", data_dir=data)
    assert again.skipped and again.test_loss == result.test_loss


@pytest.mark.slow
def test_run_study_trains_a_toml_study_and_skips_it_when_finished(tmp_path: Path) -> None:
    write_mnist_npz(tmp_path)
    study_file = tmp_path / "tiny.toml"
    study_file.write_text(
        'name = "tiny"\n[defaults]\nepochs = 2\nseeds = [0, 1]\n[[runs]]\ndataset = "mnist"\narchitecture = "net_2"\n'
    )
    study = cnnkit.run_study(study_file, epochs=1, subset=300, out=tmp_path / "runs", data_dir=tmp_path, quiet=True)
    assert [run.name for run in study.runs] == ["mnist-strided_cnn-adam-seed0", "mnist-strided_cnn-adam-seed1"]
    assert study.missing == [] and study.path == tmp_path / "runs" / "tiny-epochs1-subset300"  # a budget of its own
    assert [len(run.history["val_loss"]) for run in study.runs] == [1, 1]
    summary = study.summary()
    assert list(summary.n) == [2] and not math.isnan(summary.test_accuracy_sd[0])
    manifest = json.loads((study.path / "study.json").read_text())
    assert [run["subset"] for run in manifest["runs"]] == [300, 300]

    stamps = [(run.dir / "result.json").stat().st_mtime_ns for run in study.runs]
    again = cnnkit.run_study(str(study_file), epochs=1, subset=300, out=tmp_path / "runs", data_dir=tmp_path)
    assert [(run.dir / "result.json").stat().st_mtime_ns for run in again.runs] == stamps
    assert again.to_pandas().test_loss.tolist() == study.to_pandas().test_loss.tolist()


# ------------------------------------------------------------------------------------------ settings by name
def test_none_keeps_a_default_and_every_run_field_is_accepted() -> None:
    from dataclasses import fields

    from cnnkit.training.runner import RunConfig
    from cnnkit.training.settings import run_config

    assert run_config("mnist", "net_1", epochs=None, lr=None) == RunConfig("mnist", "net_1")
    values = {f.name: getattr(RunConfig("mnist", "net_1"), f.name) for f in fields(RunConfig)}
    del values["dataset"], values["architecture"]
    assert run_config("mnist", "net_1", **values) == RunConfig("mnist", "net_1")


def test_a_list_setting_takes_a_list_or_the_flag_s_text() -> None:
    from cnnkit.training.runner import RunConfig
    from cnnkit.training.settings import run_config

    if "augment" not in RunConfig.__dataclass_fields__:
        pytest.skip("RunConfig has no list setting (augment) yet")
    assert run_config("cifar10", "net_1", augment=["flip", "crop"]).augment == ("flip", "crop")
    assert run_config("cifar10", "net_1", augment="flip,crop").augment == ("flip", "crop")


def test_a_study_is_a_name_a_toml_file_or_a_study_object(tmp_path: Path) -> None:
    from cnnkit.plugins import get_registries
    from cnnkit.studies.study import resolve_study

    registries = get_registries()
    assignment = resolve_study("assignment", registries)
    assert len(assignment.runs) == 7 and resolve_study(assignment, registries) is assignment
    (tmp_path / "mine.toml").write_text('[[runs]]\ndataset = "mnist"\narchitecture = "net_1"\n')
    assert resolve_study(tmp_path / "mine.toml", registries).name == "mine"


def test_run_takes_the_levers_as_keywords(tmp_path: Path) -> None:
    write_mnist_npz(tmp_path)
    result = cnnkit.run(
        "mnist", "net_2", epochs=1, subset=200, out=tmp_path / "runs", data_dir=tmp_path, quiet=True,
        augment=["flip"], dropout=0.25, early_stopping=2,
    )  # fmt: skip
    assert result.name == "mnist-strided_cnn-adam-aug_flip-drop0.25-es2-seed0"
    assert result.settings["augment"] == ["flip"] and result.settings["dropout"] == 0.25  # typed as the schema says
    assert result.config["levers"]["augment"] == ["flip"] and result.config["levers"]["early_stopping"] == 2
