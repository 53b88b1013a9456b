"""Every bad input: exit 2, one line saying what is wrong, no traceback, nothing written or changed."""

from __future__ import annotations

import importlib.metadata
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli

from cnnkit import hookimpl, plugins

MNIST_SHAPES = {"x_train": (60_000, 28, 28), "y_train": (60_000,), "x_test": (10_000, 28, 28), "y_test": (10_000,)}


def write_npz(directory: Path, **changes: np.ndarray) -> Path:
    arrays = {k: np.zeros(shape, dtype=np.uint8) for k, shape in MNIST_SHAPES.items()}
    arrays.update(changes)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "mnist.npz", **arrays)
    return directory


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path, *extra: str) -> str:
    out = tmp_path / "runs"
    before = snapshot(data)
    code, _, err = cli(capsys, "run", "mnist", "net_1", "--quiet", "--data-dir", str(data), "--out", str(out), *extra)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists(), "nothing may be written for a bad input"
    assert snapshot(data) == before, "the data directory must not change"
    return err


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x_train": np.zeros((60_000, 28, 28), dtype=np.float32)}, "dtype"),
        ({"x_train": np.zeros((60_000, 28, 27), dtype=np.uint8)}, "shape"),
        ({"y_train": np.full(60_000, 10, dtype=np.uint8)}, "out of range"),
        ({"y_train": np.zeros(59_999, dtype=np.uint8)}, "59999"),
    ],
)
def test_bad_arrays_in_the_data_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, changes: dict, message: str
) -> None:
    data = write_npz(tmp_path / "data", **changes)
    err = run_fails(capsys, tmp_path, data)
    assert str(data / "mnist.npz") in err and message in err


def test_truncated_data_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_npz(tmp_path / "data")
    path = data / "mnist.npz"
    path.write_bytes(path.read_bytes()[:200_000])
    err = run_fails(capsys, tmp_path, data)
    assert str(path) in err


def test_corrupt_gzip_idx_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (data / f"{name}.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not gzip data")
    err = run_fails(capsys, tmp_path, data)
    assert "train-images-idx3-ubyte.gz" in err


def test_output_directory_that_cannot_be_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_npz(tmp_path / "data")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = cli(
        capsys,
        "run",
        "mnist",
        "net_1",
        "--quiet",
        "--epochs",
        "1",
        "--subset",
        "200",
        "--data-dir",
        str(data),
        "--out",
        str(blocker / "runs"),
    )
    assert code == 2 and "cannot write to" in err and "choose another --out" in err
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_asked_for_where_there_is_none(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_npz(tmp_path / "data")
    err = run_fails(capsys, tmp_path, data, "--accelerator", "gpu")
    assert "--accelerator gpu was asked for, but no usable GPU" in err and "--accelerator cpu" in err


def test_report_for_a_directory_that_is_not_a_study(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = cli(capsys, "report", str(tmp_path))
    assert code == 2 and str(tmp_path) in err and "Traceback" not in err
    assert snapshot(tmp_path) == {"notes.txt": b"hello"}


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "--debug", "run", "mnsit", "net_1", "--out", str(tmp_path / "runs"))
    assert code == 2 and "Traceback" in err and "did you mean 'mnist'" in err


# -- plugins that misbehave --------------------------------------------------------------------------------


@pytest.fixture
def plugin_module(monkeypatch: pytest.MonkeyPatch):
    """Install a module as if a distribution 'acme-cnn' declared it in the cnnkit entry-point group."""

    def install(**hooks: object) -> None:
        module = types.ModuleType("acme_cnn_plugin")
        for name, function in hooks.items():
            setattr(module, name, hookimpl(function))
        monkeypatch.setitem(__import__("sys").modules, "acme_cnn_plugin", module)
        _add_entry_point(monkeypatch, "acme_cnn_plugin")

    plugins.set_registries(None)
    yield install
    plugins.set_registries(None)


class _Dist:
    name, version = "acme-cnn", "1.0"


def _add_entry_point(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "cnnkit":
            ep = importlib.metadata.EntryPoint("acme", value, "cnnkit")
            object.__setattr__(ep, "dist", _Dist())
            found.append(ep)
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_plugin_that_fails_to_import_is_named_and_spares_the_rest(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins.set_registries(None)
    _add_entry_point(monkeypatch, "acme_module_that_does_not_exist")
    code, out, err = cli(capsys, "list", "datasets")
    plugins.set_registries(None)
    assert code == 0 and "mnist" in out
    assert "plugin acme-cnn (acme-cnn:acme) failed to load: ModuleNotFoundError" in err


def test_plugin_registering_a_duplicate_name(capsys: pytest.CaptureFixture[str], plugin_module) -> None:
    plugin_module(cnnkit_register_datasets=lambda register: register("mnist", "acme:Other"))
    code, _, err = cli(capsys, "list")
    assert code == 2 and "dataset name 'mnist' is registered twice" in err and "acme-cnn:acme" in err
    assert "Traceback" not in err


def test_plugin_raising_inside_a_hook(capsys: pytest.CaptureFixture[str], plugin_module) -> None:
    def explode(register):
        raise KeyError("oops")

    plugin_module(cnnkit_register_optimizers=explode)
    code, _, err = cli(capsys, "list")
    assert code == 2 and "plugin 'acme-cnn:acme' failed in cnnkit_register_optimizers: KeyError" in err


def test_subset_larger_than_the_training_set_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_npz(tmp_path / "data")
    err = run_fails(capsys, tmp_path, data, "--subset", "70000")
    assert "--subset 70000 is larger than the 60000 training images" in err


def test_no_data_and_no_network_leaves_no_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    missing = tmp_path / "not-yet"
    code, _, err = cli(
        capsys, "run", "mnist", "net_1", "--quiet", "--data-dir", str(missing), "--out", str(tmp_path / "runs")
    )
    assert code == 2 and "no mnist data in" in err and "network is unreachable" in err
    assert not missing.exists() and not (tmp_path / "runs").exists()
