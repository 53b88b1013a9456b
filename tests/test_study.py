"""Studies: the built-in assignment, TOML study files with clear errors, and `cnnkit run --all` end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli_subprocess, real_data_dir, write_mnist_npz

from cnnkit.errors import UsageError
from cnnkit.plugins import create_plugin_manager
from cnnkit.studies.study import load_study_file, manifest

ASSIGNMENT_DIRS = [
    "mnist-pooling_cnn-adadelta-seed0",
    "mnist-strided_cnn-adadelta-seed0",
    "mnist-pooling_cnn-adam-seed0",
    "mnist-strided_cnn-adam-seed0",
    "cifar10-pooling_cnn-adam-seed0",
    "cifar10-pooling_cnn-adagrad-seed0",
    "cifar10-pooling_cnn-adadelta-seed0",
]


def test_assignment_study_has_the_seven_runs() -> None:
    study = create_plugin_manager()[1].studies.get("assignment")
    planned = study.expand()
    assert [config.dir_name for config, _ in planned] == ASSIGNMENT_DIRS
    assert [config.epochs for config, _ in planned] == [10] * 4 + [30] * 3
    assert {(c.batch_size, c.val_split, c.preset) for c, _ in planned} == {(128, 0.2, "keras")}
    references = {c.dir_name: spec.reference["test_accuracy"] for c, spec in planned if spec.reference}
    assert references == {
        ASSIGNMENT_DIRS[0]: 0.8736,
        ASSIGNMENT_DIRS[1]: 0.8735,
        ASSIGNMENT_DIRS[4]: 0.6597,
        ASSIGNMENT_DIRS[5]: 0.4914,
        ASSIGNMENT_DIRS[6]: 0.3556,
    }
    overridden = study.expand(epochs=1, subset=2000, seeds=[0, 1])
    assert len(overridden) == 14 and {(c.epochs, c.subset) for c, _ in overridden} == {(1, 2000)}
    assert manifest(study, planned)["runs"][0]["reference"]["test_loss"] == 0.4901


GOOD = """
name = "mine"
description = "two nets, two seeds"
[defaults]
epochs = 3
seeds = [0, 1]

[[runs]]
dataset = "mnist"
architecture = "net_1"
optimizer = "adam"

[[runs]]
dataset = "mnist"
architecture = "net_2"
lr = 0.01
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_study_file_is_read_with_defaults(tmp_path: Path) -> None:
    study = load_study_file(write(tmp_path, GOOD))
    assert study.name == "mine" and len(study.runs) == 2
    assert study.runs[1].lr == 0.01 and study.runs[1].epochs == 3 and study.runs[0].seeds == (0, 1)
    assert len(study.expand()) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace('optimizer = "adam"', 'optimiser = "adam"'), "line 11: unknown key 'optimiser' in run 1"),
        (GOOD.replace("lr = 0.01", 'lr = "fast"'), "line 16: 'lr' in run 2 must be float, got str 'fast'"),
        (GOOD.replace("epochs = 3", "epochs = 3.5"), "line 5: 'epochs' in [defaults] must be int"),
        (GOOD.replace("epochs = 3", "epochs = "), "TOML syntax error"),
        (GOOD.replace("seeds = [0, 1]", "seeds = []"), "'seeds' in [defaults] must be a non-empty list"),
        ('name = "x"\n', "a study needs at least one [[runs]] table"),
        (GOOD.replace('architecture = "net_2"\n', ""), "line 13: run 2 has no 'architecture'"),
        ("colour = 1\n" + GOOD, "line 1: unknown key 'colour'"),
    ],
)
def test_malformed_study_files_name_the_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        load_study_file(write(tmp_path, text))
    assert message in str(error.value) and str(tmp_path / "study.toml") in str(error.value)


def test_bad_study_file_from_the_cli_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("lr = 0.01", 'lr = "fast"'))
    result = cli_subprocess("run", "--study", str(path), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and "'lr' in run 2 must be float" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def test_unknown_names_in_a_study_are_refused_before_anything_runs(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('architecture = "net_2"', 'architecture = "net_9"'))
    result = cli_subprocess("run", "--study", str(path), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and "unknown architecture 'net_9'" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
@pytest.mark.realdata
def test_run_all_end_to_end_killed_between_runs_then_resumed(tmp_path: Path) -> None:
    data = real_data_dir("mnist.npz", "cifar10.npz")
    args = [
        sys.executable,
        "-m",
        "cnnkit.cli",
        "run",
        "--all",
        "--epochs",
        "1",
        "--subset",
        "2000",
        "--quiet",
        "--out",
        str(tmp_path),
        "--data-dir",
        str(data),
    ]
    study_dir = tmp_path / "assignment-epochs1-subset2000"  # the quick look: never the full study's directory
    first = study_dir / ASSIGNMENT_DIRS[0] / "result.json"
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline:
        assert process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = first.read_bytes()
    assert not (study_dir / "report").exists()

    result = subprocess.run(args, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    assert "already complete, skipped" in result.stderr and first.read_bytes() == finished_before
    for name in ASSIGNMENT_DIRS:
        outcome = json.loads((study_dir / name / "result.json").read_text())
        assert outcome["epochs"] == 1 and 0.0 <= outcome["test_accuracy"] <= 1.0
    assert json.loads((study_dir / "study.json").read_text())["name"] == "assignment"
    html = (study_dir / "report" / "report.html").read_text()
    assert "0.8736" in html or "87.36" in html
    assert (study_dir / "report" / "report.pdf").read_bytes().startswith(b"%PDF")

    spanish = cli_subprocess("report", str(study_dir), "--lang", "es", "--format", "html")
    assert spanish.returncode == 0, spanish.stderr
    assert "Resultados" in (study_dir / "report" / "report.es.html").read_text()
    assert "Resultados" not in html and html == (study_dir / "report" / "report.html").read_text()  # kept


GRID = """
name = "grid"
[defaults]
epochs = 1
subset = 600
grid = { lr = [0.001, 0.01, 0.1, 1.0] }

[[runs]]
dataset = "mnist"
architecture = "net_2"
optimizer = "adadelta"

[[runs]]
dataset = "cifar10"
architecture = "net_1"
grid = { augment = [[], ["flip", "crop"]], dropout = [0.0, 0.25] }
"""


def test_a_grid_expands_into_the_product_of_its_values_with_names_that_say_so(tmp_path: Path) -> None:
    study = load_study_file(write(tmp_path, GRID))
    registries = create_plugin_manager()[1]
    planned = [config.checked(registries) for config, _ in study.expand()]
    names = [c.dir_name for c in planned]
    assert names[:4] == [
        "mnist-strided_cnn-adadelta-lr0.001-seed0",
        "mnist-strided_cnn-adadelta-lr0.01-seed0",
        "mnist-strided_cnn-adadelta-lr0.1-seed0",
        "mnist-strided_cnn-adadelta-lr1-seed0",
    ]
    # run 2's grid adds its keys to [defaults]' grid: 4 lr x 2 augment x 2 dropout
    assert len(names) == 4 + 16 == len(set(names))
    assert names[4:8] == [
        "cifar10-pooling_cnn-adam-lr0.001-seed0",
        "cifar10-pooling_cnn-adam-lr0.001-drop0.25-seed0",
        "cifar10-pooling_cnn-adam-lr0.001-aug_flip+crop-seed0",
        "cifar10-pooling_cnn-adam-lr0.001-aug_flip+crop-drop0.25-seed0",
    ]
    assert {(c.subset, c.epochs) for c in planned} == {(600, 1)}
    # names do not depend on the other runs of the study
    alone = load_study_file(write(tmp_path, GRID.split('[[runs]]\ndataset = "cifar10"')[0]))
    assert [c.checked(registries).dir_name for c, _ in alone.expand()] == names[:4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GRID.replace("subset = 600", "sbuset = 600"), "line 5: unknown key 'sbuset' in [defaults]"),
        (GRID.replace("0.1, 1.0]", '0.1, "big"]'), "a value of grid 'lr' in [defaults] must be float, got str 'big'"),
        (
            GRID.replace('["flip", "crop"]', '"flip"'),
            "a value of grid 'augment' in run 2 must be a list of str, got str 'flip'",
        ),
        (GRID.replace("dropout = [0.0", "droput = [0.0"), "unknown grid key 'droput' in run 2"),
        (GRID.replace("lr = [", "lr = 3, x = ["), "grid 'lr' in [defaults] must be a non-empty list"),
    ],
)
def test_grid_and_defaults_mistakes_name_their_table(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        load_study_file(write(tmp_path, text))
    assert message in str(error.value)


def test_two_runs_that_would_share_a_directory_are_refused_before_anything_trains(tmp_path: Path) -> None:
    text = GOOD.replace('architecture = "net_1"', 'architecture = "strided_cnn"').replace("lr = 0.01\n", "")
    result = cli_subprocess("run", "--study", str(write(tmp_path, text)), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "runs 1 (mnist · strided_cnn · adam · seed 0) and 3 (mnist · net_2 · adam · seed 0)" in result.stderr
    assert "would share the directory mnist-strided_cnn-adam-seed0" in result.stderr and "'label'" in result.stderr
    assert not (tmp_path / "runs").exists()
    labelled = text.replace('architecture = "net_2"', 'architecture = "net_2"\nlabel = "again"')
    study = load_study_file(write(tmp_path, labelled))
    assert [c.dir_name for c, _ in study.expand()][2:] == ["again-seed0", "again-seed1"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("dropout = 1.5", "--dropout must be a number from 0 up to (not including) 1, got 1.5"),
        ('augment = ["spin"]', "unknown augmentation 'spin'"),
        ('lr_schedule = "linear"', "unknown schedule 'linear'"),
        ("early_stopping = 0", "--early-stopping must be a patience of at least 1 epoch, got 0"),
        ("weight_decay = -1", "--weight-decay must be a number of at least 0, got -1"),
    ],
)
def test_a_bad_lever_in_a_study_file_is_one_line_and_exit_2(tmp_path: Path, setting: str, message: str) -> None:
    path = write(tmp_path, GOOD.replace("lr = 0.01", setting))
    result = cli_subprocess("run", "--study", str(path), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


LR_GRID = """
name = "lr-grid"
[defaults]
epochs = 1
subset = 1200
grid = { lr = [0.002, 0.02] }
[[runs]]
dataset = "mnist"
architecture = "lenet"
"""


@pytest.mark.slow
def test_an_lr_grid_trains_each_value_once_and_jobs_2_gives_the_same_numbers(tmp_path: Path) -> None:
    """LeNet-5 of the example plugin on a synthetic MNIST: each lr once, named after it; again with --jobs 2."""
    pytest.importorskip("cnnkit_fashion", reason="the study uses the example plugin's lenet")
    if len(os.sched_getaffinity(0)) != 2:
        pytest.skip("compares with one thread per job, as --jobs 2 gives on exactly 2 cores")
    write_mnist_npz(tmp_path)
    path = write(tmp_path, LR_GRID)
    names = ["mnist-lenet5-adam-lr0.002-seed0", "mnist-lenet5-adam-lr0.02-seed0"]
    results = {}
    for jobs, env in (("1", {"OMP_NUM_THREADS": "1"}), ("2", {})):
        out = tmp_path / f"jobs{jobs}"
        args = ["run", "--study", str(path), "--jobs", jobs, "--quiet", "--report-format", "html"]
        done = cli_subprocess(*args, "--data-dir", str(tmp_path), "--out", str(out), env=env)
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in (out / "lr-grid").iterdir() if p.is_dir() and p.name != "report") == names
        results[jobs] = [json.loads((out / "lr-grid" / name / "result.json").read_text()) for name in names]
    assert [r["lr"] for r in results["1"]] == [0.002, 0.02]
    assert [r["subset"] for r in results["1"]] == [1200, 1200]
    for serial, parallel in zip(results["1"], results["2"], strict=True):
        assert serial["history"] == parallel["history"] and serial["test_loss"] == parallel["test_loss"]
