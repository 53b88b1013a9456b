"""Hyperparameter search: the [search] table and its one-line errors, Optuna ask-and-tell across processes (seeding,
surplus trials, takeover of abandoned trials), pruning, the trials' records and table, the confirmation plan, the
built-in cifar10-tune, and end to end on tiny MNIST subsets (slow: killed and restarted; two processes at once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import cli, real_data_dir

from cnnkit.errors import UsageError
from cnnkit.results.files import trial_dir
from cnnkit.results.trials import TrialRow, read_trials_table, write_trials_table
from cnnkit.states import TrialState
from cnnkit.studies.optuna_bridge import StorageRef, open_study, trial_seed
from cnnkit.studies.search import TrialDriver, confirmation_plan, trial_config
from cnnkit.studies.search_spec import Choice, Range, Search
from cnnkit.studies.study import RunSpec, load_study_file

ISSUE_EXAMPLE = """
[defaults]
dataset = "cifar10"
architecture = "net_1"
optimizer = "adam"
epochs = 30

[search]
trials = 40
sampler = "tpe"          # tpe (default) | random | grid (grid: only `choice` dimensions, their product)
seed = 0                 # the sampler's seed: one process given the same file proposes the same trials
pruner = "median"        # median (default) | hyperband | none
metric = "val_loss"      # or "val_accuracy"; the direction follows from it
budget = { epochs = 10, subset = 10000 }   # each trial's budget; confirmation runs use [defaults]
confirm = { top = 1, seeds = 3, baseline = true }

[search.space]
lr = { low = 1e-4, high = 1e-2, log = true }
weight_decay = { low = 0.0, high = 0.1 }
dropout = { low = 0.0, high = 0.5 }
augment = { choice = [[], ["flip", "crop"], ["flip", "crop", "cutout"]] }
"""


def write(tmp_path: Path, text: str, name: str = "search.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_issue_example_reads_as_a_search_without_runs(tmp_path: Path) -> None:
    study = load_study_file(write(tmp_path, ISSUE_EXAMPLE))
    search = study.search
    assert study.runs == () and study.expand() == []
    assert (search.trials, search.sampler, search.seed, search.pruner, search.metric) == (
        40,
        "tpe",
        0,
        "median",
        "val_loss",
    )
    assert search.direction == "minimize" and search.trial_budget() == (10, 10000)
    assert (search.confirm.top, search.confirm.seeds, search.confirm.baseline) == (1, 3, True)
    assert search.space["lr"] == Range(1e-4, 1e-2, log=True)
    assert search.space["augment"].values == ((), ("flip", "crop"), ("flip", "crop", "cutout"))
    assert search.base.dataset == "cifar10" and search.base.epochs == 30
    record = search.record()
    assert [d["setting"] for d in record["space"]] == ["lr", "weight_decay", "dropout", "augment"]
    assert record["space"][3]["labels"] == ["none", "flip+crop", "flip+crop+cutout"]  # what Optuna sees


def _spec(replace_: str = "", with_: str = "", extra: str = "") -> str:
    return ISSUE_EXAMPLE.replace(replace_, with_) + extra if replace_ else ISSUE_EXAMPLE + extra


BAD_SPECS = [
    pytest.param(
        _spec("low = 0.0, high = 0.5", "low = 0.5, high = 0.1"),
        "line 20: [search.space] dropout: low 0.5 is above high 0.1",
        id="low>high",
    ),
    pytest.param(
        _spec("dropout = {", "dropuot = {"),
        "line 20: [search.space] dropuot: unknown setting 'dropuot'; did you mean 'dropout'?",
        id="unknown-setting",
    ),
    pytest.param(
        _spec('sampler = "tpe"', 'sampler = "bayes"'),
        "line 10: [search] sampler must be one of tpe, random, grid, got 'bayes'",
        id="unknown-sampler",
    ),
    pytest.param(
        _spec('pruner = "median"', 'pruner = "asha"'),
        "line 12: [search] pruner must be one of median, hyperband, none, got 'asha'",
        id="unknown-pruner",
    ),
    pytest.param(
        _spec("trials = 40", "trials = 0"),
        "line 9: [search] trials must be an integer of at least 1, got 0",
        id="trials<1",
    ),
    pytest.param(
        _spec("low = 1e-4, high", 'low = "small", high'),
        "line 18: [search.space] lr: low must be a number, got 'small'",
        id="wrong-type-range",
    ),
    pytest.param(
        _spec('choice = [[], ["flip", "crop"],', 'choice = ["flip", ["flip", "crop"],'),
        "[search.space] augment: each choice must be a list of names such as ['flip', 'crop'], got 'flip'",
        id="wrong-type-choice",
    ),
    pytest.param(
        _spec('sampler = "tpe"', 'sampler = "grid"'),
        "line 10: sampler 'grid' takes only choice dimensions; lr is a range",
        id="grid-with-range",
    ),
    pytest.param(
        _spec("high = 0.5 }", "high = 1.0 }"),
        "[search.space] dropout: high must be a number from 0 up to (not including) 1, got 1.0",
        id="schema-rule",
    ),
    pytest.param(
        _spec("low = 1e-4, high = 1e-2, log = true", "low = 0.0, high = 1e-2, log = true"),
        "[search.space] lr: low must be a positive number, got 0.0",
        id="lr-rule",
    ),
    pytest.param(
        _spec("budget = { epochs = 10,", "budget = { epochs = 0,"),
        "line 14: [search] budget epochs must be an integer of at least 1, got 0",
        id="budget",
    ),
    pytest.param(_spec("seed = 0 ", "colour = 0 "), "line 11: unknown key 'colour' in [search]", id="unknown-key"),
    pytest.param(
        _spec(extra='\n[[runs]]\ndataset = "mnist"\narchitecture = "net_1"\n'),
        "a search study has no [[runs]]",
        id="runs",
    ),
    pytest.param(_spec('dataset = "cifar10"\n', ""), "a search study needs 'dataset' in [defaults]", id="no-dataset"),
    pytest.param(
        _spec("epochs = 30\n", "epochs = 30\nseeds = [0, 1]\n"),
        "'seeds' in [defaults] is not for a search study",
        id="seeds",
    ),
    pytest.param(
        _spec('augment = { choice = [[], ["flip", "crop"]', 'augment = { choice = [["flop"], ["flip", "crop"]'),
        "unknown augmentation 'flop'",
        id="unknown-name",
    ),
    pytest.param(
        _spec("weight_decay = {", "epochs = {"),
        "[search.space] epochs: epochs is the trials' budget",
        id="budget-searched",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_SPECS)
def test_every_bad_spec_is_one_line_and_exit_2_before_anything_is_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    out = tmp_path / "runs"
    code, _, err = cli(capsys, "run", "--study", str(path), "--out", str(out), "--jobs", "1", "--quiet")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert lines[0].startswith("cnnkit: error: ") and "Traceback" not in err
    assert not out.exists()


def test_a_search_in_python_is_checked_by_the_same_rules() -> None:
    base = RunSpec("mnist", "net_1", "adam", epochs=2)
    with pytest.raises(UsageError, match=r"\[search.space\] dropout: low 0.4 is above high 0.2"):
        Search(base=base, space={"dropout": Range(0.4, 0.2)}, trials=2)
    with pytest.raises(UsageError, match="batch_size: each choice must be an integer"):
        Search(base=base, space={"batch_size": Choice([64, 12.5])}, trials=2)
    grid = Search(
        base=base, space={"batch_size": Choice([64, 128]), "lr_schedule": Choice(["none", "cosine"])}, sampler="grid"
    )
    assert grid.trials == 4 and grid.space["lr_schedule"].values == (None, "cosine")  # "none": no schedule
    with pytest.raises(UsageError, match="trials 5 is more than the grid's 4 combinations"):
        replace(grid, trials=5)


# ------------------------------------------------------------------------------------------------ Optuna
TINY = """
name = "tiny"
[defaults]
dataset = "mnist"
architecture = "net_1"
optimizer = "adam"
epochs = 2
subset = 300

[search]
trials = TRIALS
seed = 0
pruner = "median"
budget = { epochs = 2 }
confirm = { top = 1, seeds = 1, baseline = true }

[search.space]
lr = { low = 1e-4, high = 1e-2, log = true }
dropout = { low = 0.0, high = 0.5 }
augment = { choice = [[], ["flip", "crop"]] }
"""


def tiny(tmp_path: Path, trials: int) -> Path:
    return write(tmp_path, TINY.replace("TRIALS", str(trials)), "tiny.toml")


def drivers(tmp_path: Path, trials: int, count: int = 2, url: str | None = None) -> list[TrialDriver]:
    """`count` drivers of one search over one storage (its journal, or the RDB at `url`), as separate processes
    would hold it (nothing trains)."""
    search = load_study_file(tiny(tmp_path, trials)).search
    journal = str(tmp_path / "runs" / "tiny" / "optuna-journal.log")
    ref = StorageRef(url=url) if url else StorageRef(journal=journal)
    options = SimpleNamespace(quiet=True, verbose=False)
    return [
        TrialDriver(search, open_study(search, "tiny", ref, 2), ref, "tiny", options, tmp_path / "runs", 2, 300)
        for _ in range(count)
    ]


@pytest.mark.parametrize("rdb", [False, True], ids=["journal", "sqlite"])
def test_processes_sharing_a_search_never_propose_alike_and_a_restart_does_not_replay(
    tmp_path: Path, rdb: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'search.db'}" if rdb else None
    first, second = drivers(tmp_path, trials=6, url=url)
    jobs = [first.ask(), second.ask(), second.ask(), first.ask()]  # as two processes would, interleaved
    numbers = [job.trial.number for job in jobs if job]
    assert numbers == [0, 1, 2, 3]
    proposals = [json.dumps(job.trial.params) for job in jobs if job]
    assert len(set(proposals)) == 4
    (restarted,) = drivers(tmp_path, trials=6, count=1, url=url)  # a new process, seeded alike
    later = restarted.ask()
    assert later is not None and later.trial.number == 4 and json.dumps(later.trial.params) not in proposals
    assert trial_seed(0, 4) != trial_seed(0, 3)
    # deterministic: the same seed and number propose the same values (here: the sampler's first, random trials)
    other = f"sqlite:///{tmp_path / 'other.db'}" if rdb else None
    (elsewhere,) = drivers(tmp_path / "other", trials=6, count=1, url=other)
    assert [elsewhere.ask().trial.params for _ in range(2)] == [jobs[0].trial.params, jobs[1].trial.params]


def test_a_trial_asked_beyond_the_trials_is_surplus_however_processes_race(tmp_path: Path) -> None:
    first, second = drivers(tmp_path, trials=2)
    with_room = [first.study.ask(), second.study.ask(), first.study.ask()]  # three asks before anyone counted
    assert [first._surplus(t.number) for t in with_room] == [False, False, True]
    assert first.ask() is None and second.ask() is None  # two trials are running: nothing more to ask
    assert len([t for t in first.study.get_trials() if not t.user_attrs.get("cnnkit.surplus")]) == 3
    assert first._surplus(with_room[2].number)


def test_an_abandoned_trial_is_taken_over_with_its_number_and_values(tmp_path: Path) -> None:
    first, second = drivers(tmp_path, trials=3)
    job = first.ask()
    assert job is not None
    trial = next(t for t in first.study.get_trials() if t.number == job.trial.number)

    def owned_by(host: str, pid: int) -> None:
        owner = {"host": host, "pid": pid, "since": time.time()}
        first.study._storage.set_trial_user_attr(trial._trial_id, "cnnkit.owner", owner)

    owned_by(second.me.host, os.getppid())  # a live process on this machine asked for it: it will start it
    assert second.take_over() is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owned_by(second.me.host, dead.pid)  # ... and once that process is gone, the trial is abandoned
    taken = second.take_over()
    assert taken is not None and taken.trial.number == job.trial.number and taken.trial.params == job.trial.params
    owned_by("elsewhere", 1)
    assert second.take_over() is None  # asked on another machine a moment ago, never started: not abandoned yet
    stale = {"host": "elsewhere", "pid": 1, "since": time.time() - 3600}
    first.study._storage.set_trial_user_attr(trial._trial_id, "cnnkit.owner", stale)
    first.study._storage.set_trial_user_attr(trial._trial_id, "cnnkit.heartbeat", time.time())
    assert second.take_over() is None  # asked an hour ago elsewhere, and its trainer (no shared disk) beats: alive
    first.study._storage.set_trial_user_attr(trial._trial_id, "cnnkit.heartbeat", time.time() - 3600)
    assert second.take_over() is not None  # ... no sign of life from it for an hour: abandoned
    owned_by("elsewhere", 1)
    started = trial_dir(tmp_path / "runs" / "tiny", job.trial.number)
    started.mkdir(parents=True)
    (started / "config.json").write_text("{}")  # its trainer started, and no live process holds it: abandoned
    assert second.take_over() is not None


def test_trials_table_round_trips_with_a_column_per_searched_setting(tmp_path: Path) -> None:
    rows = [
        TrialRow(0, TrialState.COMPLETE, 0.5, {"lr": 0.001, "augment": ("flip", "crop")}, 3),
        TrialRow(1, TrialState.PRUNED, 0.9, {"lr": 0.01, "augment": ()}, 1, pruned_epoch=1),
        TrialRow(2, TrialState.RUNNING, None, {"lr": 0.002, "augment": ()}, 0),
    ]
    write_trials_table(tmp_path, ["lr", "augment"], rows)
    assert read_trials_table(tmp_path) == (["lr", "augment"], rows)
    from cnnkit.api.results import StudyResult

    frame = StudyResult("s", tmp_path, [], searched=["lr", "augment"], trial_rows=rows).trials()
    assert list(frame.columns) == ["number", "state", "value", "lr", "augment", "epochs"]
    assert frame["state"].tolist() == ["complete", "pruned", "running"]
    assert frame["augment"][0] == ("flip", "crop") and frame["epochs"].tolist() == [3, 1, 0]


def test_the_confirmation_runs_the_best_settings_and_the_defaults_without_them(tmp_path: Path) -> None:
    search = load_study_file(tiny(tmp_path, 6)).search
    best = [(4, {"lr": 0.003, "dropout": 0.2, "augment": ("flip", "crop")})]
    plan = confirmation_plan(search, best, None, None, None)
    assert [(c.lr, c.dropout, c.augment, c.seed, c.epochs, c.subset) for c, _ in plan] == [
        (0.003, 0.2, ("flip", "crop"), 0, 2, 300),
        (None, 0.0, (), 0, 2, 300),
    ]
    assert [role["role"] for _, role in plan] == ["tuned", "baseline"] and plan[0][1]["trial"] == 4
    assert trial_config(search, best[0][1], 2, 300).seed == search.seed


def test_cifar10_tune_plans_a_search_whose_baseline_is_the_assignment_run() -> None:
    from cnnkit.plugins import create_plugin_manager
    from cnnkit.results.reading import stored_settings

    registries = create_plugin_manager()[1]
    study = registries.studies.get("cifar10-tune")
    search = study.search
    assert study.runs == () and search.trials >= 30 and search.trial_budget() == (10, 10_000)
    assert {"lr", "weight_decay", "dropout", "augment", "label_smoothing"} <= set(search.space)
    base = search.base.template
    assert (base.dataset, registries.architectures.canonical(base.architecture), base.optimizer) == (
        "cifar10",
        "pooling_cnn",
        "adam",
    )
    assert (search.confirm.top, search.confirm.seeds, search.confirm.baseline) == (1, 3, True)
    plan = confirmation_plan(search, [(0, {"lr": 0.002})], None, None, None)
    baseline = [config.checked(registries) for config, role in plan if role["role"] == "baseline"]
    assert [c.dir_name for c in baseline] == [f"cifar10-pooling_cnn-adam-seed{k}" for k in range(3)]
    shipped = Path(__file__).parents[1] / "examples" / "results" / "assignment" / "cifar10-pooling_cnn-adam-seed0"
    assert baseline[0].differences_from(stored_settings(shipped) or {}) == []
    assert baseline[0].epochs == 30 and baseline[0].subset is None
    from cnnkit.studies.search import check_space

    check_space(search, registries, *search.trial_budget())  # every value a trial may take is valid


# ------------------------------------------------------------------------------------------------ training
class _PruneAt:
    """A reporter that prunes at one epoch, and remembers what it was told."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.told = epoch, []

    def report(self, epoch: int, value: float) -> bool:
        self.told.append((epoch, value))
        return epoch >= self.epoch

    def close(self) -> None:
        self.closed = True


class _Trial:
    metric = "val_loss"

    def __init__(self, reporter: _PruneAt) -> None:
        self._reporter = reporter

    def run_dir(self, out: Path, study: str) -> Path:
        return trial_dir(Path(out) / study, 7)

    def reporter(self) -> _PruneAt:
        return self._reporter

    def facts(self) -> dict[str, Any]:
        return {"number": 7, "metric": self.metric, "params": {"dropout": 0.1}}


@pytest.mark.slow
@pytest.mark.realdata
def test_a_pruned_trial_records_its_state_epoch_and_validation_figures_only(tmp_path: Path) -> None:
    from cnnkit.training.runner import TrainerOptions, execute
    from cnnkit.training.settings import run_config

    data = real_data_dir("mnist.npz")
    reporter = _PruneAt(2)
    config = run_config("mnist", "net_1", epochs=4, subset=200, dropout=0.1)
    options = TrainerOptions(accelerator="cpu", data_dir=str(data), quiet=True)
    outcome = execute(config, options, tmp_path / "runs", "s", trial=_Trial(reporter))
    result = outcome.result
    assert outcome.run_dir == tmp_path / "runs" / "s" / "trials" / "7"
    assert result["trial"]["state"] == "pruned" and result["trial"]["pruned_epoch"] == 2 and reporter.closed
    assert [epoch for epoch, _ in reporter.told] == [1, 2] and len(result["history"]["val_loss"]) == 2
    assert result["trial"]["value"] == min(result["history"]["val_loss"]) == reporter.told[-1][1]
    assert not [key for key in result if key.startswith("test") or "test_" in key]  # the test set stays closed
    assert not (outcome.run_dir / "checkpoints").exists() and not (outcome.run_dir / "predictions.npz").exists()
    again = execute(config, options, tmp_path / "runs", "s", trial=_Trial(_PruneAt(9)))
    assert again.skipped and again.result == result  # a pruned trial is finished, not interrupted


# ------------------------------------------------------------------------------------------------ end to end
def _trials(study_dir: Path) -> list[TrialRow]:
    return read_trials_table(study_dir)[1]


def _command(path: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cnnkit.cli", "run", "--study", str(path), "--out", str(out), "--quiet",
            "--report-format", "html", *extra]  # fmt: skip


@pytest.mark.slow
@pytest.mark.realdata
def test_a_search_with_two_jobs_killed_in_the_middle_ends_with_exactly_its_trials(tmp_path: Path) -> None:
    real_data_dir("mnist.npz")
    path, out = tiny(tmp_path, 6), tmp_path / "runs"
    study_dir = out / "tiny"
    process = subprocess.Popen(_command(path, out, "--jobs", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(list(study_dir.glob("trials/*/result.json"))) < 2 and time.monotonic() < deadline:
        assert process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {p.parent.name: p.read_bytes() for p in study_dir.glob("trials/*/result.json")}
    assert 2 <= len(before) < 6

    result = subprocess.run(_command(path, out, "--jobs", "2"), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    rows = _trials(study_dir)
    assert [row.number for row in rows] == list(range(6)) and all(row.state.finished for row in rows)
    assert sorted(p.parent.name for p in study_dir.glob("trials/*/result.json")) == [str(n) for n in range(6)]
    for name, data in before.items():  # finished trials are kept as they were
        assert (study_dir / "trials" / name / "result.json").read_bytes() == data
    _check_finished_search(study_dir, trials=6)


@pytest.mark.slow
@pytest.mark.realdata
def test_two_processes_started_together_share_a_search_and_end_with_its_trials(tmp_path: Path) -> None:
    real_data_dir("mnist.npz")
    path, out = tiny(tmp_path, 4), tmp_path / "runs"
    command = _command(path, out, "--jobs", "1")
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    errors = [process.communicate(timeout=900)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], errors
    study_dir = out / "tiny"
    rows = _trials(study_dir)
    assert len(rows) == 4 and all(row.state.finished for row in rows)
    assert len({json.dumps(row.params, default=list) for row in rows}) == 4  # never proposed alike
    trainers = set()
    for row in rows:
        result = json.loads((trial_dir(study_dir, row.number) / "result.json").read_text())
        assert len(result["history"]["val_loss"]) == 2  # trained once: one epoch log, written by one process
        trainers.add(result["trained_by"]["pid"])
    assert trainers <= {process.pid for process in processes}
    _check_finished_search(study_dir, trials=4)


def _check_finished_search(study_dir: Path, trials: int) -> None:
    import cnnkit

    study = cnnkit.load_study(study_dir)
    frame = study.trials()
    assert list(frame.columns) == ["number", "state", "value", "lr", "dropout", "augment", "epochs"]
    assert len(frame) == trials and set(frame["state"]) <= {"complete", "pruned"}
    for number in frame["number"]:  # trials hold no test figures
        result = json.loads((trial_dir(study_dir, int(number)) / "result.json").read_text())
        assert "test_accuracy" not in result and "best_test_accuracy" not in result
    best = frame[frame["state"] == "complete"].sort_values(["value", "number"]).iloc[0]
    manifest = json.loads((study_dir / "study.json").read_text())
    tuned = [run for run in manifest["runs"] if run["role"] == "tuned"]
    assert [run["trial"] for run in tuned] == [int(best["number"])]
    for entry in tuned:  # the confirmation runs use the best trial's settings, at the study's full budget
        config = json.loads((study_dir / entry["dir"] / "config.json").read_text())["run"]
        assert config["lr"] == best["lr"] and config["dropout"] == best["dropout"]
        assert tuple(config["augment"]) == best["augment"] and config["epochs"] == 2
    assert {run.name for run in study.runs} == {run["dir"] for run in manifest["runs"]}
    assert all("test_accuracy" in run.result for run in study.runs)
