"""Label smoothing, the lever added through the settings schema alone: flag, study key, run name, loss, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import cli, real_data_dir

from cnnkit.plugins import get_registries
from cnnkit.studies.study import load_study_file
from cnnkit.training.settings import run_config


def test_training_loss_is_keras_smoothed_cross_entropy_and_validation_loss_is_plain() -> None:
    registries = get_registries()
    model = registries.architectures.get("net_2")((1, 28, 28), 10, registries.optimizers.get("adam"), "keras", None,
                                                  label_smoothing=0.1)  # fmt: skip
    torch.manual_seed(0)
    model.network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    torch.nn.init.normal_(model.network[1].weight, std=1.0)  # confident predictions: smoothing matters
    images, labels = torch.rand(8, 1, 28, 28), torch.arange(8) % 10
    with torch.no_grad():
        log_p = torch.log_softmax(model(images), dim=1)
        targets = torch.nn.functional.one_hot(labels, 10).float() * 0.9 + 0.1 / 10  # Keras' smoothed one-hot
        smoothed = -(targets * log_p).sum(dim=1).mean()
        plain = torch.nn.functional.nll_loss(log_p, labels)
        model.log = lambda *args, **kwargs: None  # no Trainer attached
        assert model.training_step((images, labels), 1).item() == pytest.approx(smoothed.item(), rel=1e-6)
        model._step((images, labels), 1, "val")
        assert model.val_loss_mean.compute().item() == pytest.approx(plain.item(), rel=1e-6)
        assert abs(smoothed.item() - plain.item()) > 1e-3  # the two losses are told apart


def test_a_smoothed_run_has_a_directory_of_its_own_and_records_the_setting() -> None:
    config = run_config("mnist", "net_2", label_smoothing=0.1).checked(get_registries())
    assert config.dir_name == "mnist-strided_cnn-adam-ls0.1-seed0"
    plain = run_config("mnist", "net_2").checked(get_registries())
    assert plain.dir_name == "mnist-strided_cnn-adam-seed0"  # off: the name is unchanged
    assert config.levers_record(get_registries())["label_smoothing"] == 0.1


@pytest.mark.parametrize("value", ["1.5", "1", "-0.1"])
def test_a_smoothing_outside_0_to_1_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, out, err = cli(capsys, "run", "mnist", "net_2", "--label-smoothing", value)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"cnnkit: error: --label-smoothing must be a number from 0 up to (not including) 1, got {float(value)}"
    ]


def test_a_study_grid_varies_label_smoothing(tmp_path: Path) -> None:
    study_file = tmp_path / "smooth.toml"
    study_file.write_text(
        '[defaults]\ndataset = "mnist"\narchitecture = "net_2"\n\n[[runs]]\ngrid = { label_smoothing = [0.0, 0.1] }\n'
    )
    registries = get_registries()
    names = [config.checked(registries).dir_name for config, _ in load_study_file(study_file).expand()]
    assert names == ["mnist-strided_cnn-adam-seed0", "mnist-strided_cnn-adam-ls0.1-seed0"]


@pytest.mark.realdata
@pytest.mark.slow
def test_a_smoothing_study_trains_and_its_report_names_the_lever_in_both_languages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = real_data_dir("mnist.npz")
    study_file = tmp_path / "smooth.toml"
    study_file.write_text(
        '[defaults]\ndataset = "mnist"\narchitecture = "net_2"\nepochs = 1\nsubset = 600\n\n'
        "[[runs]]\ngrid = { label_smoothing = [0.0, 0.2] }\n"
    )
    out = tmp_path / "out"
    args = ["--study", str(study_file), "--out", str(out), "--data-dir", str(data), "--quiet", "--jobs", "1"]
    code, _, err = cli(capsys, "run", *args, "--report-format", "html")
    assert code == 0, err
    smoothed = out / "smooth" / "mnist-strided_cnn-adam-ls0.2-seed0"
    assert json.loads((smoothed / "config.json").read_text())["run"]["label_smoothing"] == 0.2
    plain = json.loads((out / "smooth" / "mnist-strided_cnn-adam-seed0" / "result.json").read_text())
    assert json.loads((smoothed / "result.json").read_text())["test_loss"] != plain["test_loss"]
    english = (out / "smooth" / "report" / "report.html").read_text(encoding="utf-8")
    assert "label smoothing of the training targets with 0.2" in english
    code, _, err = cli(capsys, "report", str(out / "smooth"), "--format", "html", "--lang", "es")
    assert code == 0, err
    spanish = out / "smooth" / "report" / "report.es.html"
    assert "suavizado de etiquetas de los objetivos de entrenamiento con 0,2" in spanish.read_text(encoding="utf-8")
