"""Clean training figures (`train_eval_loss`, `train_eval_accuracy`): recorded, honest, and leaving training alone.

Tiny runs of the strided net on synthetic MNIST (600 images: 480 to train, 120 to validate), with the levers that
make the running training figures meaningless - flip and crop, dropout, label smoothing - built as `cnnkit run`
builds them (`build_run`) and fitted, tested and recorded by the runner's own `fit_test_record`.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from helpers import write_mnist_npz

import cnnkit
from cnnkit.console.terminal import quiet_lightning
from cnnkit.data.datamodule import normalize_images
from cnnkit.plugins import get_registries
from cnnkit.results.reading import History, epoch_curves
from cnnkit.results.runs import load_study
from cnnkit.training import train_eval
from cnnkit.training.build import BuiltRun, build_run
from cnnkit.training.callbacks import StopOnRequest, format_metrics_csv
from cnnkit.training.runner import TrainerOptions, create_run_directory, fit_test_record
from cnnkit.training.settings import run_config
from cnnkit.training.train_eval import TrainingSetEvaluation, training_sample

SHIPPED = Path(__file__).resolve().parent.parent / "examples" / "results"
LEVERS: dict[str, Any] = {"augment": "flip,crop", "dropout": 0.3, "label_smoothing": 0.1}
TRAIN, VAL, SEED = 480, 120, 0
CLEAN = ("train_eval_loss", "train_eval_accuracy")
CONTRACT = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_mnist_npz(directory)
    return directory


class StopAtEpoch(L.Callback):
    """Asks the run's Ctrl-C handler to stop at the first batch of `epoch` (0-based): last.ckpt is the epoch before."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            for callback in trainer.callbacks:
                if isinstance(callback, StopOnRequest):
                    callback.requested = True


def build(data: Path, out: Path, *, evaluation: bool = True, extra: tuple[L.Callback, ...] = ()) -> BuiltRun:
    """The levers run as `cnnkit run` builds it (optionally without the clean training figures) into `out`."""
    registries = get_registries()
    config = run_config("mnist", "net_2", epochs=2, subset=TRAIN + VAL, seed=SEED, **LEVERS).checked(registries)
    options = TrainerOptions(accelerator="cpu", devices="1", data_dir=str(data), quiet=True)
    run = build_run(config, options, out / config.dir_name, registries, None, "single", extra_callbacks=extra)
    if not evaluation:  # the run as it was before the clean training figures
        callbacks = run.trainer.callbacks
        run.trainer.callbacks = [c for c in callbacks if not isinstance(c, TrainingSetEvaluation)]
    create_run_directory(run.run_dir, fresh=False)
    return run


def fit(run: BuiltRun) -> dict[str, Any]:
    with quiet_lightning(True):
        return fit_test_record(run).result


def spy_on_samples(patch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """The sample positions the clean evaluation is given from now on, one entry per evaluated epoch."""
    seen: list[torch.Tensor] = []
    original: Callable[..., Any] = train_eval.evaluate

    def spy(*args: Any) -> Any:
        seen.append(args[4].clone())
        return original(*args)

    patch.setattr(train_eval, "evaluate", spy)
    return seen


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    return spy_on_samples(monkeypatch)


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuiltRun, dict[str, Any]]]:
    """The levers run, uninterrupted, with its clean training figures; the sample positions it used."""
    with pytest.MonkeyPatch.context() as patch:
        seen = spy_on_samples(patch)
        run = build(data, tmp_path_factory.mktemp("reference"))
        result = fit(run)
    yield run, {"result": result, "samples": seen}


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_metrics_csv_and_result_json_have_the_clean_figures(reference: tuple[BuiltRun, dict[str, Any]]) -> None:
    run, recorded = reference
    history = recorded["result"]["history"]
    with open(run.run_dir / "metrics.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == [*CONTRACT, *CLEAN]  # the contract's columns first and in place, the new ones last
    rows = metrics_rows(run.run_dir)
    for name in CLEAN:
        assert len(history[name]) == 2
        assert [round(v, 6) for v in history[name]] == [float(row[name]) for row in rows]
    assert all(0.0 <= v <= 1.0 for v in history["train_eval_accuracy"])
    assert all(math.isfinite(v) and v > 0 for v in history["train_eval_loss"])
    stored = json.loads((run.run_dir / "result.json").read_text())
    assert stored["history"] == history


def test_clean_figures_are_the_final_weights_in_eval_mode_on_the_sample_with_plain_cross_entropy(
    reference: tuple[BuiltRun, dict[str, Any]],
) -> None:
    run, recorded = reference
    history = recorded["result"]["history"]
    model = run.model
    state = torch.load(run.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["state_dict"])
    images, labels = run.datamodule.split("train")
    index = training_sample(TRAIN, VAL, SEED)
    model.eval()
    with torch.no_grad():
        logits = model(normalize_images(images[index]))
    assert history["train_eval_loss"][-1] == pytest.approx(F.cross_entropy(logits, labels[index]).item(), rel=1e-5)
    accuracy = (logits.argmax(1) == labels[index]).float().mean().item()
    assert history["train_eval_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)
    # With flip, crop and dropout the running figures are another measurement altogether.
    assert history["train_eval_accuracy"] != history["train_accuracy"]
    assert history["train_eval_loss"] != history["train_loss"]


def test_the_sample_is_the_same_images_every_epoch_and_a_function_of_seed_and_sizes(
    reference: tuple[BuiltRun, dict[str, Any]],
) -> None:
    samples = reference[1]["samples"]
    assert len(samples) == 2 and torch.equal(samples[0], samples[1])
    assert torch.equal(samples[0], training_sample(TRAIN, VAL, SEED))
    assert len(samples[0]) == VAL == len(set(samples[0].tolist())) and int(samples[0].max()) < TRAIN
    assert torch.equal(training_sample(TRAIN, VAL, SEED), training_sample(TRAIN, VAL, SEED))
    assert not torch.equal(training_sample(TRAIN, VAL, 1), training_sample(TRAIN, VAL, SEED))
    assert len(training_sample(100, 400, SEED)) == 100  # a validation split larger than training: all of it
    state = torch.get_rng_state()
    training_sample(48_000, 12_000, 3)
    assert torch.equal(torch.get_rng_state(), state)  # drawn by a generator of its own


def test_the_trajectory_is_the_same_bit_for_bit_with_and_without_the_evaluation(
    data: Path, tmp_path: Path, reference: tuple[BuiltRun, dict[str, Any]]
) -> None:
    run, recorded = reference
    with_evaluation = recorded["result"]
    plain = build(data, tmp_path, evaluation=False)
    without = fit(plain)
    assert set(without["history"]) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    for name, values in without["history"].items():
        assert with_evaluation["history"][name] == values, name
    for name in ("test_loss", "test_accuracy", "best_epoch", "best_test_loss", "best_test_accuracy"):
        assert with_evaluation[name] == without[name], name
    weights = [
        torch.load(r.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True) for r in (run, plain)
    ]
    for name, tensor in weights[1]["state_dict"].items():
        assert torch.equal(weights[0]["state_dict"][name], tensor), name
    for key in ("state", "param_groups"):  # the optimizer too (Adam's moments and step counts)
        assert repr(weights[0]["optimizer_states"][0][key]) == repr(weights[1]["optimizer_states"][0][key])
    before = [{k: v for k, v in row.items() if k in CONTRACT} for row in metrics_rows(run.run_dir)]
    assert before == metrics_rows(plain.run_dir)


def test_a_resumed_run_has_the_same_clean_figures_as_an_uninterrupted_one(
    data: Path, tmp_path: Path, reference: tuple[BuiltRun, dict[str, Any]], spied: list[torch.Tensor]
) -> None:
    run, recorded = reference
    interrupted = build(data, tmp_path, extra=(StopAtEpoch(1),))
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted)
    assert not (interrupted.run_dir / "result.json").exists()
    assert [row["epoch"] for row in metrics_rows(interrupted.run_dir)] == ["1"]
    resumed = fit(build(data, tmp_path))  # on from last.ckpt, in a run built afresh
    assert resumed["history"] == recorded["result"]["history"]
    assert (interrupted.run_dir / "metrics.csv").read_text() == (run.run_dir / "metrics.csv").read_text()
    assert len(spied) == 2 and all(torch.equal(s, recorded["samples"][0]) for s in spied)  # the same images


def test_a_run_begun_before_the_clean_figures_resumes_with_them_from_then_on(data: Path, tmp_path: Path) -> None:
    old = build(data, tmp_path, evaluation=False, extra=(StopAtEpoch(1),))
    with pytest.raises(KeyboardInterrupt):
        fit(old)
    result = fit(build(data, tmp_path))
    assert result["history"]["train_eval_accuracy"][0] is None and result["history"]["train_eval_accuracy"][1] > 0
    rows = metrics_rows(old.run_dir)
    assert rows[0]["train_eval_accuracy"] == "" and float(rows[1]["train_eval_accuracy"]) > 0
    (stored,) = load_study(tmp_path).runs
    assert math.isnan(stored.history.train_eval_accuracy[0]) and stored.history.has_train_eval
    assert math.isnan(epoch_curves(old.run_dir, result["history"])["train_eval_loss"][0])


@pytest.mark.parametrize("study", ["assignment", "cifar10-levers"])
def test_shipped_runs_without_the_columns_still_load(study: str) -> None:
    loaded = load_study(SHIPPED / study)
    assert loaded.runs
    for run in loaded.runs:
        assert run.history.train_eval_loss == () and run.history.train_eval_accuracy == ()
        assert not run.history.has_train_eval and run.history.epochs == len(run.history.val_loss)
    api = cnnkit.load_study(SHIPPED / study)
    assert not set(api.history()["metric"]) & set(CLEAN)
    assert not set(api.runs[0].history) & set(CLEAN)


def test_an_old_run_directory_copied_without_the_columns_loads(
    reference: tuple[BuiltRun, dict[str, Any]], tmp_path: Path
) -> None:
    run, _ = reference
    old = tmp_path / "study" / run.run_dir.name
    shutil.copytree(run.run_dir, old, ignore=shutil.ignore_patterns("checkpoints"))
    result = json.loads((old / "result.json").read_text())
    for name in CLEAN:
        del result["history"][name]
    (old / "result.json").write_text(json.dumps(result))
    rows = [{k: v for k, v in row.items() if k in CONTRACT} for row in metrics_rows(old)]
    (old / "metrics.csv").write_text("\n".join([",".join(CONTRACT), *(",".join(r.values()) for r in rows)]) + "\n")
    (stored,) = load_study(tmp_path / "study").runs
    assert stored.history.train_eval_accuracy == () and stored.history.epochs == 2
    assert set(cnnkit.load_study(tmp_path / "study").runs[0].history) == set(CONTRACT[1:])


def test_history_reads_the_clean_curves_as_optional_and_checks_their_length() -> None:
    base = {"train_loss": [1.0, 0.5], "train_accuracy": [0.2, 0.4], "val_loss": [1.1, 0.6], "val_accuracy": [0.3, 0.5]}
    assert History.from_mapping(base).train_eval_loss == ()
    full = History.from_mapping({**base, "train_eval_loss": [0.9, 0.4], "train_eval_accuracy": [0.35, 0.6]})
    assert full.train_eval_accuracy == (0.35, 0.6) and full.has_train_eval
    with pytest.raises(cnnkit.DataError):
        History.from_mapping({**base, "train_eval_loss": [0.9]})


def test_metrics_csv_leaves_the_clean_columns_out_until_an_epoch_has_them() -> None:
    rows: list[dict[str, float]] = [
        {"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1, "val_accuracy": 0}
    ]
    assert format_metrics_csv(rows).splitlines()[0] == ",".join(CONTRACT)
    rows.append({**rows[0], "epoch": 2, "lr": 0.1, "train_eval_loss": 0.5, "train_eval_accuracy": 0.75})
    lines = format_metrics_csv(rows, learning_rate=True).splitlines()
    assert lines[0] == ",".join([*CONTRACT, "lr", *CLEAN])
    assert lines[1].endswith(",,") and lines[2].endswith(",0.1,0.500000,0.750000")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_clean_evaluation_runs_on_the_gpu(data: Path, tmp_path: Path) -> None:
    registries = get_registries()
    config = run_config("mnist", "net_2", epochs=1, subset=TRAIN + VAL, **LEVERS).checked(registries)
    options = TrainerOptions(accelerator="gpu", devices="1", data_dir=str(data), quiet=True, precision="bf16-mixed")
    run = build_run(config, options, tmp_path / config.dir_name, registries, None, "single")
    create_run_directory(run.run_dir, fresh=False)
    history = fit(run)["history"]
    assert 0.0 <= history["train_eval_accuracy"][0] <= 1.0 and math.isfinite(history["train_eval_loss"][0])
