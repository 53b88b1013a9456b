"""What the environment does is no internal error (issue 27): a read-only study, a full disk, a closed pipe, Ctrl-C
at start-up; each is one line and an exit code, and `cnnkit report --out` writes the report elsewhere."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import cli


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    from report_fixtures import make_study

    return make_study(tmp_path / "assignment")


def mount_tmpfs(mount: Path, size: str) -> None:
    mount.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")


@pytest.fixture
def read_only_study(study_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """The study on a filesystem mounted read-only (as root, chmod alone would not stop a write)."""
    mount = tmp_path / "ro"
    mount_tmpfs(mount, "8m")
    try:
        shutil.copytree(study_dir, mount / "assignment")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "assignment"
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_report_on_a_read_only_study_is_one_line_that_suggests_out(
    read_only_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "report", str(read_only_study), "--format", "html")
    assert code == 1 and not out
    assert err.strip() == (
        f"cnnkit: error: cannot write the report into {read_only_study / 'report'}: Read-only file system; "
        "choose another folder with --out"
    )
    elsewhere = tmp_path / "elsewhere"
    code, out, err = cli(
        capsys, "report", str(read_only_study), "--format", "html", "--lang", "es", "--out", str(elsewhere)
    )
    assert code == 0, err
    assert out.strip() == f"report: {elsewhere / 'report.es.html'}"
    assert "Resultados" in (elsewhere / "report.es.html").read_text(encoding="utf-8")


def test_report_per_language_keeps_both_side_by_side(study_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "report", str(study_dir), "--format", "html")[0] == 0
    english = (study_dir / "report" / "report.html").read_text(encoding="utf-8")
    code, out, err = cli(capsys, "report", str(study_dir), "--format", "html", "--lang", "es")
    assert code == 0, err
    assert out.strip() == f"report: {study_dir / 'report' / 'report.es.html'}"
    assert (study_dir / "report" / "report.html").read_text(encoding="utf-8") == english
    assert '<html lang="es">' in (study_dir / "report" / "report.es.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (study_dir / "report").iterdir()) == ["report.es.html", "report.html"]


def test_report_on_a_full_disk_is_one_line(study_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mount = tmp_path / "small"
    mount_tmpfs(mount, "64k")  # smaller than one report (about 1 MB of SVG figures and tables)
    try:
        code, out, err = cli(capsys, "report", str(study_dir), "--format", "html", "--out", str(mount))
    finally:
        subprocess.run(["umount", str(mount)], check=False)
    assert code == 1 and not out and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"cnnkit: error: the disk is full: cannot write {mount / 'report.html'} (")
    assert "internal error" not in err


class ClosedPipe(io.StringIO):
    """A stdout whose reader has gone (`cnnkit list | head -2`)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_without_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnkit.cli import main

    with capsys.disabled():
        monkeypatch.setattr(sys, "stdout", ClosedPipe())
        err = io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        assert main(["list"]) == 141
    assert err.getvalue() == ""


@pytest.mark.parametrize("command", ["list", "list --json", "status STUDY"])
def test_a_closed_pipe_of_the_real_command_says_nothing(study_dir: Path, command: str) -> None:
    line = command.replace("STUDY", str(study_dir))
    shell = f"{sys.executable} -m cnnkit.cli {line} | true; echo $((PIPESTATUS[0]))"  # `true` reads nothing
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    assert done.stderr == "" and done.stdout.strip() in ("0", "141")


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.8, 2.0])
def test_ctrl_c_in_the_first_seconds_of_a_parallel_study_prints_no_traceback(tmp_path: Path, after: float) -> None:
    """Ctrl-C reaches the terminal's whole process group: the command and its fork server, still importing Lightning."""
    from helpers import write_mnist_npz

    data = tmp_path / "data"
    data.mkdir()
    write_mnist_npz(data)
    study = tmp_path / "two.toml"
    study.write_text('name = "two"\n[defaults]\ndataset = "mnist"\nepochs = 1\nsubset = 300\n'
                     '[[runs]]\narchitecture = "net_1"\n[[runs]]\narchitecture = "net_2"\n')  # fmt: skip
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        command = [sys.executable, "-m", "cnnkit.cli", "run", "--study", str(study), "--jobs", "2"]
        command += ["--out", str(tmp_path / "runs"), "--data-dir", str(data)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        time.sleep(after)
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole process group
        assert process.wait(timeout=120) == 130
    ended = log.read_text()
    time.sleep(6)  # what a fork server still importing would print comes after the command has ended
    text = log.read_text()
    assert text == ended and "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert text.strip().splitlines()[-1].startswith("cnnkit: interrupted; checkpoints are kept. Resume with: ")
