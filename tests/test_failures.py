"""One failure funnel (`cnnkit.failures`): a failure gives one message and one exit code through the command, the
Python API and a job worker; worker messages are picklable dataclasses; states print as the words cnnkit writes."""

from __future__ import annotations

import errno
import json
import pickle
from collections.abc import Callable
from multiprocessing import Pipe
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import cli

import cnnkit
from cnnkit.errors import CnnkitError, RunError, UsageError
from cnnkit.failures import Caller, FailureKind, failure_of, worded
from cnnkit.states import JobState, Phase, RunState
from cnnkit.storage.locks import LockHolder, RunLocked
from cnnkit.studies import jobs, messages
from cnnkit.studies.jobs import Job, JobFailed, JobTimer, train_job
from cnnkit.studies.messages import JobReport
from cnnkit.studies.workers import _Relay, _train
from cnnkit.training import runner
from cnnkit.training.config import RunConfig

RUN = "mnist-pooling_cnn-adam-seed0"
ADVICE = "wait for it to finish (cnnkit status shows it) or train another run"
DISK_FULL = "the disk is full (no space left on device); free some space, then run the same command again"

# a failure, and what the command prints for it, the exit code, the API's exception, a worker's report
CASES: dict[str, tuple[BaseException, str, int, type[BaseException], tuple[JobState, str]]] = {
    "bad input": (
        UsageError("--epochs must be at least 1"),
        "cnnkit: error: --epochs must be at least 1",
        2,
        UsageError,
        (JobState.FAILED, "--epochs must be at least 1"),
    ),
    "a full disk": (
        OSError(errno.ENOSPC, "No space left on device"),
        f"cnnkit: error: {DISK_FULL}",
        1,
        RunError,
        (JobState.FAILED, DISK_FULL),
    ),
    "a locked run": (
        RunLocked(Path("/runs/single") / RUN, LockHolder("elsewhere", 4242, 0.0)),
        f"cnnkit: error: {RUN} is being trained by pid 4242 on host elsewhere; {ADVICE}",
        1,
        RunError,
        (JobState.LOCKED, f"{RUN} is being trained by pid 4242 on host elsewhere"),  # the study waits for it
    ),
    "a bug": (
        ValueError("boom"),
        "cnnkit: internal error: ValueError: boom (run with --debug for the traceback)",
        1,
        ValueError,  # a bug reaches a notebook as it is, traceback and all
        (JobState.FAILED, "internal error: ValueError: boom"),
    ),
    "Ctrl-C": (
        KeyboardInterrupt(),
        "cnnkit: interrupted; checkpoints are kept. Resume with: cnnkit run mnist pooling_cnn --out OUT",
        130,
        KeyboardInterrupt,
        (JobState.INTERRUPTED, "interrupted; its checkpoints are kept"),
    ),
}


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> Callable[[BaseException], None]:
    """Make every run fail with an exception, wherever it is trained (the command, the API, a job)."""

    def fail_with(exc: BaseException) -> None:
        def execute(*args: Any, **kwargs: Any) -> None:
            raise exc

        monkeypatch.setattr(runner, "execute", execute)

    return fail_with


def a_job(out: Path) -> Job:
    return Job(RunConfig("mnist", "pooling_cnn"), None, 1, out, "single", False)


def worker_report(job: Job) -> JobReport:
    """What a worker tells its command about `job`, as the command receives it (through a pipe)."""
    command, worker = Pipe()
    relay = _Relay(worker)
    relay.send(_train(job, relay))
    report = command.recv()
    assert isinstance(report, JobReport)
    return report


def test_the_api_speaks_of_its_keyword_arguments_where_the_command_speaks_of_flags(
    failing: Callable[[BaseException], None], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    refused = RunError("runs/single/x holds a run with another configuration; --fresh would delete it, or --out writes "
                       "this one elsewhere; --data-dir and --epochs too, not --study", exit_code=1)  # fmt: skip
    failing(refused)
    code, _, err = cli(capsys, "run", "mnist", "pooling_cnn", "--out", "OUT")
    assert code == 1 and err.strip() == f"cnnkit: error: {refused}"
    with pytest.raises(RunError) as raised:
        cnnkit.run("mnist", "pooling_cnn", out=tmp_path)
    assert str(raised.value) == (
        "runs/single/x holds a run with another configuration; fresh=True would delete it, or out= writes this one "
        "elsewhere; data_dir and epochs too, not --study"
    )
    assert raised.value.exit_code == 1 and "--fresh" in str(refused)  # the original stays as the command says it
    report = worker_report(a_job(tmp_path))  # a worker tells its command: the command's words
    assert "--fresh would delete it" in report.message


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_one_failure_says_the_same_through_the_command_the_api_and_a_worker(
    case: tuple, failing: Callable[[BaseException], None], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    exc, line, exit_code, api_error, (state, message) = case
    failing(exc)
    code, _, err = cli(capsys, "run", "mnist", "pooling_cnn", "--out", "OUT")
    assert (code, err.strip().splitlines()[-1]) == (exit_code, line)
    assert "Traceback" not in err

    with pytest.raises(api_error) as raised:
        cnnkit.run("mnist", "pooling_cnn", out=tmp_path)
    if isinstance(raised.value, CnnkitError):  # the same line, in the API's words (`epochs`, not `--epochs`)
        assert (raised.value.exit_code, f"cnnkit: error: {raised.value}") == (exit_code, worded(line, Caller.API))
    else:
        assert raised.value is exc

    report = worker_report(a_job(tmp_path))
    assert (report.name, report.state, report.message) == (RUN, state, message)
    if state is JobState.FAILED:  # the study stops with the same exit code, naming the run whose line was shown
        assert JobFailed(report).exit_code == exit_code
        assert str(JobFailed(report)) == f"{RUN} failed (its line above says why); the study stops there"
    if state is JobState.INTERRUPTED:
        assert report.exit_code == exit_code


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_a_ray_task_reports_what_a_worker_reports_and_raises_a_bug(
    case: tuple, failing: Callable[[BaseException], None], tmp_path: Path
) -> None:
    exc = case[0]
    failing(exc)
    if failure_of(exc).kind is FailureKind.INTERNAL:
        with pytest.raises(type(exc)):  # Ray hands it back with the task's traceback
            train_job(a_job(tmp_path))
    else:
        assert train_job(a_job(tmp_path)) == worker_report(a_job(tmp_path))


def test_cnnkit_errors_keep_their_exit_code_and_anything_unknown_is_internal() -> None:
    class Exotic(CnnkitError):
        exit_code = 3

    assert (failure_of(Exotic("odd")).line, failure_of(Exotic("odd")).exit_code) == ("odd", 3)
    unknown = failure_of(RuntimeError("x"))
    assert (unknown.kind, unknown.line, unknown.exit_code, unknown.known) == (
        FailureKind.INTERNAL,
        "internal error: RuntimeError: x",
        1,
        False,
    )


def test_debug_prints_the_traceback_before_the_line_but_not_for_ctrl_c(
    failing: Callable[[BaseException], None], capsys: pytest.CaptureFixture[str]
) -> None:
    failing(ValueError("boom"))
    _, _, err = cli(capsys, "--debug", "run", "mnist", "pooling_cnn")
    assert err.startswith("Traceback") and err.rstrip().endswith("(run with --debug for the traceback)")
    failing(KeyboardInterrupt())
    assert "Traceback" not in cli(capsys, "--debug", "run", "mnist", "pooling_cnn")[2]


WORKER_MESSAGES = [
    messages.Ready(),
    messages.Line("Epoch 1/2 - 1.0s"),
    messages.Batch(1, 2, 3, 4),
    messages.Started(48_000, 1),
    messages.EpochDone(2, 12.5),
    JobReport(RUN, JobState.DONE, timings={"total": 1.0}),
    messages.Stop(),
]


@pytest.mark.parametrize("message", WORKER_MESSAGES, ids=lambda m: type(m).__name__)
def test_worker_messages_cross_a_pipe_as_equal_frozen_values(message: Any) -> None:
    command, worker = Pipe()
    worker.send(message)
    assert command.recv() == message == pickle.loads(pickle.dumps(message))
    with pytest.raises(AttributeError):
        message.extra = 1  # frozen


def test_states_print_and_serialize_as_the_words_cnnkit_writes() -> None:
    assert [str(state) for state in RunState] == ["finished", "running", "interrupted", "pending"]
    assert f"{RunState.RUNNING:<9}|{JobState.LOCKED}" == "running  |locked"
    assert json.dumps({RunState.PENDING: JobState.DONE}) == '{"pending": "done"}'
    assert json.dumps({RunState.PENDING: JobState.DONE}, indent=1) == '{\n "pending": "done"\n}'
    assert pickle.loads(pickle.dumps(JobState.FAILED)) is JobState.FAILED


def test_the_job_timer_splits_training_from_testing_by_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 4.0, 5.0, 7.0, 10.0])
    monkeypatch.setattr(jobs, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    timer = JobTimer()
    for phase in Phase:
        timer.phase(phase)
    assert timer.timings() == {"total": 10.0, "training": 3.0, "testing": 2.0, "overhead": 5.0}
