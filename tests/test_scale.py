"""Studies at scale: run locks shared by processes, `--jobs 2`, and Ray give the numbers of one-at-a-time runs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import cli, cli_subprocess, interruptible, write_mnist_npz

from cnnkit.storage.locks import hold_run_lock

STUDY = """
name = "pair"
[defaults]
epochs = 2
subset = 1200  # as the commands below say: their budget is the plan (no directory of its own)
[[runs]]
dataset = "mnist"
architecture = "lenet"
optimizer = "adam"
[[runs]]
dataset = "mnist"
architecture = "lenet"
optimizer = "adadelta"
"""
RUNS = ["mnist-lenet5-adam-seed0", "mnist-lenet5-adadelta-seed0"]
FIGURES = ("test_loss", "test_accuracy", "best_test_loss", "best_test_accuracy", "history")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two runs of the example plugin's LeNet-5 (some 35 times cheaper than net_1) on a synthetic MNIST."""
    pytest.importorskip("cnnkit_fashion", reason="the study uses the example plugin's lenet")
    root = tmp_path_factory.mktemp("scale")
    write_mnist_npz(root)
    (root / "pair.toml").write_text(STUDY)
    return {"root": root, "toml": root / "pair.toml"}


def study_args(study: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--study",
        str(study["toml"]),
        "--subset",
        "1200",
        "--quiet",
        "--report-format",
        "html",
        "--data-dir",
        str(study["root"]),
        "--out",
        str(out),
        *extra,
    ]


def pair(out: Path, epochs: int = 2) -> Path:
    """The pair's study directory: another budget than its plan's (2 epochs) gets a directory of its own."""
    return out / ("pair" if epochs == 2 else f"pair-epochs{epochs}")


def results(out: Path, epochs: int = 2) -> dict[str, dict]:
    return {name: json.loads((pair(out, epochs) / name / "result.json").read_text()) for name in RUNS}


@pytest.fixture(scope="module")
def one_at_a_time(study: dict[str, Path]) -> dict[str, dict]:
    """The study run the plain way, one thread (as each of two jobs gets on a 2-core machine)."""
    out = study["root"] / "serial"
    done = cli_subprocess(*study_args(study, out, "--jobs", "1"), env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return results(out)


def assert_same_numbers(got: dict[str, dict], expected: dict[str, dict]) -> None:
    for name in RUNS:
        assert {k: got[name][k] for k in FIGURES} == {k: expected[name][k] for k in FIGURES}, name


@pytest.mark.slow
def test_jobs_2_gives_the_numbers_of_one_at_a_time(study: dict[str, Path], one_at_a_time: dict[str, dict]) -> None:
    if len(os.sched_getaffinity(0)) != 2:
        pytest.skip("compares with one thread per job, as --jobs 2 gives on exactly 2 cores")
    out = study["root"] / "jobs2"
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnkit.cli", *study_args(study, out, "--jobs", "2")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = process.communicate(timeout=900)
    assert process.returncode == 0, err
    for name in RUNS:
        label = " · ".join(name.split("-")[:3])  # mnist-lenet5-adam-seed0 -> mnist · lenet5 · adam
        assert f"{label} · seed 0 — 2 epochs, started: job" in err
        assert re.search(rf"\[{name}\] Test: accuracy [0-9.]+, .*; finished in", err)
    assert "\x1b[" not in err and "\r" not in err  # into a pipe or a log: plain lines only
    got = results(out)
    assert_same_numbers(got, one_at_a_time)
    assert {r["trained_by"]["pid"] for r in got.values()} == {process.pid}  # the command started, not its jobs


@pytest.mark.slow
def test_in_a_terminal_a_study_runs_side_by_side_unasked_with_a_live_line_per_job(study: dict[str, Path]) -> None:
    import pty

    from test_workers import terminal_screen

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("--jobs auto runs one job per core")
    out = study["root"] / "terminal"
    args = [a for a in study_args(study, out) if a != "--quiet"]
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnkit.cli", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "160", "LINES": "40"},
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the command and its workers have closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=60) == 0
    shown = b"".join(chunks).decode()
    plain = re.sub(r"\x1b\[\d*[FJ]", "", shown).replace("\r", "")
    assert "--jobs auto: 2 at once" in plain
    assert re.search(r"^mnist-lenet5-adam-seed0 +(starting|Epoch [12]/2)", plain, re.MULTILINE), plain
    assert re.search(r"^study: 2 running, 0 waiting; ", plain, re.MULTILINE), plain
    screen = terminal_screen(shown)  # what stays once the block is gone: the runs' lines, the table, the report
    for name in RUNS:
        assert any(re.match(rf"\[{name}\] Epoch 2/2 - .* - study ETA", line) for line in screen), screen
        assert any(line.startswith(f"[{name}] Test: accuracy") for line in screen), screen
    assert not any(re.match(r"study: |mnist-lenet5-\S+ +(starting|Epoch)", line) for line in screen), screen
    assert screen[-1].startswith("report: ")


@pytest.mark.slow
def test_two_processes_on_one_study_train_every_run_once(study: dict[str, Path]) -> None:
    out = study["root"] / "shared"
    command = [sys.executable, "-m", "cnnkit.cli", *study_args(study, out, "--jobs", "1")]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=900) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [err for _, err in outputs]
    pids = {process.pid for process in processes}
    got = results(out)
    assert {r["trained_by"]["pid"] for r in got.values()} <= pids
    for name, result in got.items():  # the process that did not train a run skipped it, held or complete
        label = " · ".join(name.split("-")[:3])
        other = [
            err
            for process, (_, err) in zip(processes, outputs, strict=True)
            if process.pid != result["trained_by"]["pid"]
        ]
        assert len(other) == 1 and (
            f"{name} is being trained by pid" in other[0] or f"{label} · seed 0 — already complete" in other[0]
        ), other
    assert all(r["trained_by"]["host"] == socket.gethostname() for r in got.values())
    assert all(len(r["history"]["val_loss"]) == 2 for r in got.values())
    assert all((out / "pair" / "report" / "report.html").exists() for _ in processes)


def test_a_run_another_process_holds_is_refused_in_one_line(
    study: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = study["root"] / "held"
    run_dir = out / "single" / "mnist-pooling_cnn-adam-seed0"
    with hold_run_lock(run_dir):
        code, _, err = cli(capsys, "run", "mnist", "net_1", "--out", str(out), "--data-dir", str(study["root"]))
    assert code == 1
    assert err.strip() == (
        f"cnnkit: error: mnist-pooling_cnn-adam-seed0 is being trained by pid {os.getpid()} on host "
        f"{socket.gethostname()}; wait for it to finish (cnnkit status shows it) or train another run"
    )
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]


@pytest.mark.slow
def test_ray_on_a_local_instance_gives_the_numbers_of_one_at_a_time(
    study: dict[str, Path], one_at_a_time: dict[str, dict]
) -> None:
    pytest.importorskip("ray")
    if len(os.sched_getaffinity(0)) != 2:
        pytest.skip("compares with one CPU per task, as a local Ray instance gives on exactly 2 cores")
    out = study["root"] / "ray"
    done = cli_subprocess(*study_args(study, out, "--executor", "ray"))
    assert done.returncode == 0, done.stderr
    assert "ray: 2 run(s), 2 at once, 1 CPU(s) each" in done.stderr
    assert_same_numbers(results(out), one_at_a_time)
    assert (out / "pair" / "report" / "report.html").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "mnist", "net_1", "--jobs", "2"], "--jobs and --executor are for studies"),
        (["run", "--all", "--jobs", "0"], "--jobs must be an integer of at least 1 or 'auto', got '0'"),
        (["run", "--all", "--ray-address", "x:1"], "--ray-address needs --executor ray"),
        (["run", "--all", "--jobs", "2", "--devices", "2"], "train each run on one device"),
    ],
)
def test_bad_parallel_options_are_refused(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, *args, "--out", str(tmp_path / "runs"))
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def start_two_jobs(study: dict[str, Path], out: Path, epochs: int = 3) -> tuple[subprocess.Popen, list[str]]:
    """`--jobs 2` on the pair, returned once the first run has a checkpoint to resume from."""
    command = [sys.executable, "-m", "cnnkit.cli", *study_args(study, out, "--jobs", "2", "--epochs", str(epochs))]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible
    )
    deadline = time.monotonic() + 600
    while not (pair(out, epochs) / RUNS[0] / "checkpoints" / "last.ckpt").exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    return process, command


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_every_job_and_the_same_command_resumes_them(study: dict[str, Path], stop: int) -> None:
    """Ctrl-C, and SIGTERM (`kill PID`, a scheduler's time limit) the same way."""
    out = study["root"] / f"interrupted-{stop}"
    process, command = start_two_jobs(study, out)
    slower = pair(out, 3) / RUNS[0]
    process.send_signal(stop)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 130, err
    assert "running job(s) at their next safe point" in err and "Resume with: cnnkit run --study" in err
    assert "Traceback" not in err and not (slower / "result.json").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert all(len(r["history"]["val_loss"]) == 3 for r in results(out, 3).values())


@pytest.mark.slow
def test_jobs_of_a_killed_command_stop_at_their_next_batch(study: dict[str, Path]) -> None:
    """SIGKILL leaves the command no time to stop its jobs: each notices it is orphaned and stops at its next batch
    (its lock released, checkpoints kept) instead of training its 200 epochs on unseen."""
    from cnnkit.storage.locks import lock_holder

    out = study["root"] / "killed"
    process, _ = start_two_jobs(study, out, epochs=200)
    process.kill()
    process.wait(timeout=60)  # not communicate(): orphaned jobs would hold its pipes open
    deadline = time.monotonic() + 30
    while any(lock_holder(pair(out, 200) / name) for name in RUNS) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(lock_holder(pair(out, 200) / name) for name in RUNS), "a job kept training after its command died"
    process.stdout.close()
    process.stderr.close()
    first = pair(out, 200) / RUNS[0]
    assert (first / "checkpoints" / "last.ckpt").exists() and not (first / "result.json").exists()


@pytest.mark.parametrize(
    ("cores", "gpus", "memory_gib", "runs", "chosen"),
    [
        (2, 0, 64, 4, 2),  # CPU: one single-threaded job per core
        (16, 0, 64, 7, 7),  # never more jobs than runs
        (16, 1, 64, 7, 4),  # one GPU: four small runs share it
        (2, 1, 64, 7, 2),  # ... but at most one job per core
        (16, 0, 5, 35, 2),  # 2 GiB a job: memory caps it
    ],
)
def test_jobs_auto_choice(
    cores: int, gpus: int, memory_gib: int, runs: int, chosen: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnkit.studies import resources

    monkeypatch.setattr(resources, "usable_cores", lambda: cores)
    monkeypatch.setattr(resources, "available_memory", lambda: memory_gib << 30)
    assert resources.auto_jobs(runs, gpus) == chosen


def test_worker_output_goes_on_line_by_line_without_progress_redraws() -> None:
    from cnnkit.console.streams import LineStream

    lines: list[str] = []
    stream = LineStream(lines.append)
    stream.write("epoch 1/2 - val_loss 0.5")
    stream.write("000\n 12%\r 50%\r100%\n\nlast line\n")
    assert lines == ["epoch 1/2 - val_loss 0.5000", "100%", "last line"]


def test_a_held_run_that_finished_meanwhile_is_not_waited_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found held early in the study, finished by the time the others are done: not named in the waiting line."""
    from cnnkit.studies import executors

    monkeypatch.setattr(executors, "WAIT_POLL_SECONDS", 0.05)
    finished, held = tmp_path / "mnist-pooling_cnn-adam-seed0", tmp_path / "mnist-strided_cnn-adam-seed0"
    finished.mkdir()
    shipped = Path(__file__).parents[1] / "examples/results/assignment/mnist-pooling_cnn-adam-seed0/result.json"
    (finished / "result.json").write_bytes(shipped.read_bytes())
    jobs = [SimpleNamespace(name=d.name, run_dir=d) for d in (finished, held)]
    locked, release = threading.Event(), threading.Event()

    def other_process() -> None:
        with hold_run_lock(held):
            locked.set()
            release.wait(5)

    holder = threading.Thread(target=other_process)
    holder.start()
    locked.wait(5)
    threading.Timer(0.3, release.set).start()
    left = executors.wait_for_others(jobs)  # type: ignore[arg-type]
    holder.join()
    err = capsys.readouterr().err
    assert "waiting for 1 run(s) that other processes are training: mnist-strided_cnn-adam-seed0\n" in err
    assert left == [jobs[1]]  # its holder stopped without a result: trained here
