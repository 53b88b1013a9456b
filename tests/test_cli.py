"""The command line: help, version, listing, summaries and one clear line (exit 2) for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli, cli_subprocess

from cnnkit import __version__


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "run --all" in out and "summary" in out
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"cnnkit {__version__}"
    code, out, _ = cli(capsys, "run", "--help")
    assert code == 0 and "--val-split" in out and "--preset" in out


def test_list_json_shows_every_contract_name_with_its_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list", "--json")
    listing = json.loads(out)
    assert code == 0
    names = {kind: {entry["name"]: entry for entry in entries} for kind, entries in listing.items()}
    assert {"mnist", "cifar10"} <= set(names["datasets"])
    assert names["architectures"]["pooling_cnn"]["aliases"] == ["net_1"]
    assert names["architectures"]["strided_cnn"]["aliases"] == ["net_2"]
    assert {"adam", "adagrad", "adadelta"} <= set(names["optimizers"])
    assert names["studies"]["assignment"]["plugin"] == "cnnkit:studies"
    assert names["datasets"]["mnist"]["distribution"] == "cnnkit"


def test_list_text_and_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list", "architectures")
    assert code == 0 and "pooling_cnn (alias net_1)" in out and "datasets:" not in out
    code, out, _ = cli(capsys, "list", "--plugins")
    assert code == 0 and "cnnkit:nets" in out and "ok" in out


@pytest.mark.parametrize(
    ("architecture", "dataset", "total"),
    [
        ("net_1", "mnist", "1,625,866"),
        ("net_2", "mnist", "1,625,866"),
        ("net_1", "cifar10", "2,117,962"),
        ("strided_cnn", "cifar10", "2,117,962"),
    ],
)
def test_summary_totals(capsys: pytest.CaptureFixture[str], architecture: str, dataset: str, total: str) -> None:
    code, out, _ = cli(capsys, "summary", architecture, "--dataset", dataset)
    assert code == 0 and out.rstrip().splitlines()[-1] == f"Total params: {total}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "mnsit", "net_1"], "unknown dataset 'mnsit'; did you mean 'mnist'?"),
        (["run", "mnist", "net_3"], "unknown architecture 'net_3'; did you mean 'net_"),
        (["run", "mnist", "net_1", "--optimizer", "adamw"], "unknown optimizer 'adamw'; did you mean 'adam'?"),
        (["run", "--study", "asignment"], "unknown study 'asignment'; did you mean 'assignment'?"),
        (["run", "mnist", "net_1", "--epochs", "ten"], "--epochs must be an integer, got 'ten'"),
        (["run", "mnist", "net_1", "--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["run", "mnist", "net_1", "--batch-size", "-5"], "--batch-size must be at least 1, got -5"),
        (["run", "mnist", "net_1", "--subset", "0"], "--subset must be at least 2, got 0"),
        (
            ["run", "mnist", "net_1", "--val-split", "1.2"],
            "--val-split must be between 0.0 and 1.0 (exclusive), got 1.2",
        ),
        (["run", "mnist", "net_1", "--val-split", "0"], "--val-split must be between 0.0 and 1.0 (exclusive), got 0"),
        (["run", "mnist", "net_1", "--preset", "jax"], "unknown preset 'jax' (choose one of: keras, torch)"),
        (["run", "mnist"], "give DATASET and ARCH"),
        (["summary", "net_1", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["report", "/nonexistent/study"], "/nonexistent/study"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, err = cli(capsys, *args, *(["--out", str(tmp_path / "runs")] if args[0] == "run" else []))
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_no_data_and_no_network_says_where_it_looked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    code, _, err = cli(
        capsys,
        "run",
        "mnist",
        "net_1",
        "--data-dir",
        str(tmp_path / "empty"),
        "--quiet",
        "--out",
        str(tmp_path / "runs"),
    )
    assert code == 2
    assert "no mnist data in" in err and "mnist.npz" in err and "train-images-idx3-ubyte" in err
    assert "Traceback" not in err


def test_entry_point_script_runs_in_a_fresh_process() -> None:
    result = cli_subprocess("summary", "net_2", "--dataset", "mnist")
    assert result.returncode == 0 and "Total params: 1,625,866" in result.stdout
    result = cli_subprocess("run", "mnist", "net_1", "--epochs", "-1")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_data_import_validates_and_never_overwrites(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from helpers import write_mnist_npz

    source = tmp_path / "src"
    source.mkdir()
    good = write_mnist_npz(source, train=60_000, test=10_000)
    data = tmp_path / "data"
    code, out, _ = cli(capsys, "data", "import", str(good), "--data-dir", str(data))
    assert code == 0 and "imported mnist.npz (mnist)" in out and "OK: train 60000, test 10000" in out
    before = (data / "mnist.npz").read_bytes()
    code, _, err = cli(capsys, "data", "import", str(good), "--data-dir", str(data))
    assert code == 2 and "already exists" in err and (data / "mnist.npz").read_bytes() == before
    truncated = tmp_path / "cut" / "mnist.npz"
    truncated.parent.mkdir()
    truncated.write_bytes(before[:5000])
    fresh = tmp_path / "fresh"
    code, _, err = cli(capsys, "data", "import", str(truncated), "--data-dir", str(fresh))
    assert code == 2 and "mnist.npz" in err and "not imported" in err and not (fresh / "mnist.npz").exists()
    code, _, err = cli(capsys, "data", "import", str(tmp_path / "cut"), "--data-dir", str(fresh))
    assert code == 2 and "is not a file" in err


def test_data_verify_reports_a_corrupt_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 broken")
    code, out, _ = cli(capsys, "data", "verify", "mnist", "--data-dir", str(tmp_path))
    assert code == 2 and "mnist: INVALID:" in out and str(tmp_path / "mnist.npz") in out
