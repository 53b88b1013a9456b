"""`cnnkit status STUDY_DIR`: where a study stands, read from its files alone (no torch, no Lightning).

A run is finished (result.json), running (a live process holds its lock), interrupted (it has files but no live
holder: stopped by Ctrl-C, which progress.json records, or its process died) or pending. The time left comes from
the measured epochs (progress.json's wall times, else finished runs' speed) and testing, run by run.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnnkit.console.eta import Speeds, Work, format_duration, parallel_seconds, planned_split, spec_pixels
from cnnkit.console.progress import plural
from cnnkit.errors import UsageError
from cnnkit.results.files import RESULT, RunFiles, manifest_path, run_dirs_with_config, trial_dir
from cnnkit.results.reading import (
    ABSENT,
    epochs_logged,
    finished_result,
    has_started,
    read_json_or_empty,
    read_progress,
    result_problem,
    run_degeneracy,
)
from cnnkit.results.trials import TrialRow, current_trials
from cnnkit.states import RunState, TrialState
from cnnkit.storage.locks import last_holder, lock_holder
from cnnkit.training.config import BY_NAME


@dataclass
class RunStatus:
    dir: str
    state: RunState
    epochs: int
    epochs_done: int = 0
    test_accuracy: float | None = None
    test_loss: float | None = None
    best_epoch: int | None = None
    train_seconds: float | None = None
    pid: int | None = None
    host: str | None = None
    stopped_cleanly: bool = False  # interrupted by Ctrl-C or SIGTERM (progress.json), not a process that died
    testing: bool = False  # its epochs are trained and it is being (or was being) tested
    damage: str | None = None  # what is wrong with a damaged result.json
    degenerate: str | None = None  # why a finished run learned next to nothing (`results.reading.Degeneracy`)


@dataclass
class TrialStatus:
    """A search's trial: its state (complete, pruned, failed; running while a live process holds it, else
    interrupted once it has started, waiting before), value, searched settings and the epochs it ran."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    epochs_done: int
    pruned_epoch: int | None = None
    pid: int | None = None
    host: str | None = None


@dataclass
class StudyStatus:
    name: str
    study_dir: str
    runs: list[RunStatus] = field(default_factory=list)
    seconds_left: float | None = None
    resume: str | None = None
    search: dict[str, Any] | None = None  # study.json's `search` for a search study
    trials: list[TrialStatus] = field(default_factory=list)

    def count(self, state: RunState) -> int:
        return sum(run.state is state for run in self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": {state: self.count(state) for state in RunState}}


def trial_status(study_dir: Path, row: TrialRow) -> TrialStatus:
    """Where one trial stands: its row of trials.csv (brought up to date), and for an unfinished one who holds it."""
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in row.params.items()}
    status = TrialStatus(row.number, str(row.state), row.value, params, row.epochs, row.pruned_epoch)
    if row.state is TrialState.RUNNING:
        directory = trial_dir(study_dir, row.number)
        holder = lock_holder(directory)
        if holder is None:
            status.state = "interrupted" if has_started(directory) else "waiting"
            holder = last_holder(directory)
        if holder is not None:
            status.pid, status.host = holder.pid, holder.host
    return status


def _planned_runs(study_dir: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's runs (study.json), or for a directory without one (`single`) the run directories it holds."""
    if isinstance(manifest.get("runs"), list):
        return manifest["runs"]
    runs = []
    for run_dir in run_dirs_with_config(study_dir):
        run = read_json_or_empty(RunFiles(run_dir).config).get("run")
        if isinstance(run, dict):
            runs.append({"dir": run_dir.name, **run})
    return runs


def run_status(run_dir: Path, run: dict[str, Any]) -> RunStatus:
    """The state of one run directory (see the module docstring)."""
    status = RunStatus(run_dir.name, RunState.PENDING, int(run.get("epochs") or 0))
    result = finished_result(run_dir, quiet=True)
    if result:
        status.state, status.epochs_done = RunState.FINISHED, len(result.get("history", {}).get("val_loss", []))
        status.epochs = int(result.get("planned_epochs") or result.get("epochs") or status.epochs)
        for name in ("test_accuracy", "test_loss", "best_epoch", "train_seconds"):
            setattr(status, name, result.get(name))
        found = run_degeneracy(run_dir, result)
        status.degenerate = found.why if found is not None and found.degenerate else None
        return status
    status.epochs_done = epochs_logged(run_dir)
    progress = read_progress(run_dir)
    status.testing = (progress is not None and progress.stage == "testing") or bool(
        status.epochs and status.epochs_done >= status.epochs
    )
    problem = result_problem(run_dir)
    status.damage = None if problem in (None, ABSENT) else problem
    holder = lock_holder(run_dir)
    if holder is not None:
        status.state = RunState.RUNNING
    elif status.epochs_done or has_started(run_dir):
        status.state, holder = RunState.INTERRUPTED, last_holder(run_dir)
        status.stopped_cleanly = progress is not None and progress.stopped_cleanly
    if holder is not None:
        status.pid, status.host = holder.pid, holder.host
    return status


def resume_command(study_dir: Path, manifest: dict[str, Any], run: dict[str, Any]) -> str:
    """The command that continues the study in STUDY_DIR as given (a copy's command points at the copy): the one
    recorded in study.json with its --out replaced, else one rebuilt from the run."""
    command = manifest.get("command")
    if command:
        cwd = manifest.get("cwd")
        there = cwd and Path(cwd) != Path.cwd() and Path(cwd).is_dir()  # its relative paths (a study file) hold there
        named = study_dir.name.startswith(str(manifest.get("name") or study_dir.name))  # not renamed
        if named and not _writes_to(command, Path(cwd or "."), study_dir.parent):  # copied or moved: point it there
            command = _with_out(command, study_dir.parent.absolute() if there else study_dir.parent)
        return f"cd {shlex.quote(str(cwd))} && {command}" if there else command
    if manifest.get("runs"):  # a study.json written before commands were recorded: same epochs and subset
        name = str(manifest.get("name") or study_dir.name)
        words = ["cnnkit", "run", *(["--all"] if name == "assignment" else ["--study", name])]
        for key in ("epochs", "subset"):
            values = {planned.get(key) for planned in manifest["runs"]}
            if len(values) == 1 and None not in values:
                words += [f"--{key}", str(values.pop())]
        return shlex.join([*words, "--out", str(study_dir.parent)])
    words = ["cnnkit", "run", str(run.get("dataset")), str(run.get("architecture"))]
    for key, value in run.items():
        setting = BY_NAME.get(key)
        if setting and setting.flag and value is not None and setting.differs(value):
            words += [setting.option, setting.cli_text(value)]
    return shlex.join([*words, "--out", str(study_dir.parent)])


def _writes_to(command: str, cwd: Path, out: Path) -> bool:
    """Whether `command`, run in `cwd`, writes into `out` (its --out, else ./runs)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return True
    given = next((w.split("=", 1)[1] for w in words if w.startswith("--out=")), None)
    if given is None and "--out" in words[:-1]:
        given = words[words.index("--out") + 1]
    return (cwd / (given or "runs")).resolve() == out.resolve()


def _with_out(command: str, out: Path) -> str:
    """`command` with its `--out` (or none) replaced by `--out OUT`."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    kept, skip = [], False
    for word in words:
        if skip or word.startswith("--out="):
            skip = False
            continue
        if word == "--out":
            skip = True
            continue
        kept.append(word)
    return shlex.join([*kept, "--out", str(out)])


def _work(run: dict[str, Any], status: RunStatus, config: dict[str, Any], specs: dict[str, Any]) -> Work:
    """Training left in a run, sized from its config.json when it has one, else from its dataset's spec."""
    data, spec = config.get("data", {}), specs.get(str(run.get("dataset")))
    shape = data.get("image_shape")
    pixels = int(shape[0] * shape[1]) if shape else spec_pixels(spec)
    images = data.get("train") or planned_split(spec, run.get("subset"), float(run.get("val_split", 0.2)))[0]
    key = (str(run.get("dataset")), str(run.get("architecture")))
    return Work(key, int(images), pixels, max(status.epochs - status.epochs_done, 0))


def _dataset_specs(names: set[str]) -> dict[str, Any]:
    """Dataset specs by name from the installed plugins (cheap: no torch), for sizing runs not started yet."""
    from cnnkit.plugins import get_registries

    specs = {}
    registries = get_registries()
    for name in names:
        try:
            specs[name] = getattr(registries.datasets.get(name), "spec", None)
        except Exception:  # a dataset whose plugin is not installed here: its runs stay unsized
            specs[name] = None
    return specs


def study_status(study_dir: Path) -> StudyStatus:
    """Read STUDY_DIR (study.json and the run directories) into a StudyStatus."""
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise UsageError(f"{study_dir} is not a directory (give a study directory such as runs/assignment)")
    manifest = read_json_or_empty(manifest_path(study_dir))
    runs = _planned_runs(study_dir, manifest)
    search = manifest.get("search") if isinstance(manifest.get("search"), dict) else None
    if not runs and search is None:
        raise UsageError(f"{study_dir} holds no study.json and no run directories; is it a cnnkit study directory?")
    status = StudyStatus(str(manifest.get("name") or study_dir.name), str(study_dir), search=search)
    status.trials = [trial_status(study_dir, row) for row in current_trials(study_dir)[1]]
    speeds = Speeds()
    unfinished = []
    for run in runs:
        run_dir = study_dir / str(run.get("dir"))
        state = run_status(run_dir, run)
        status.runs.append(state)
        config = read_json_or_empty(RunFiles(run_dir).config)
        _measure(speeds, run, run_dir, config, state)
        if state.state is not RunState.FINISHED:
            unfinished.append((run, state, config))
    specs = _dataset_specs({str(run.get("dataset")) for run, _, config in unfinished})
    in_order = sorted(
        unfinished, key=lambda entry: entry[1].state is not RunState.RUNNING
    )  # the runs in training first
    left = [_seconds_left(speeds, _work(run, state, config, specs), config, specs) for run, state, config in in_order]
    running = max(1, status.count(RunState.RUNNING))  # side by side: as many at once as are training now
    status.seconds_left = None if None in left else parallel_seconds(left, running)  # type: ignore[arg-type]
    if any(state.state in (RunState.INTERRUPTED, RunState.PENDING) for _, state, _ in unfinished):
        status.resume = resume_command(study_dir, manifest, unfinished[0][0])
    elif search is not None and manifest.get("command") and not _search_done(status):
        status.resume = resume_command(study_dir, manifest, {})
    return status


def _search_done(status: StudyStatus) -> bool:
    trials = (status.search or {}).get("trials") or 0
    return sum(t.state in ("complete", "pruned") for t in status.trials) >= trials


def _measure(speeds: Speeds, run: dict[str, Any], run_dir: Path, config: dict[str, Any], state: RunStatus) -> None:
    """What a run directory tells of the pace: its epochs' wall times (progress.json; else a finished run's
    training speed) and its testing time."""
    data = config.get("data", {})
    shape = data.get("image_shape") or [1, 1]
    pixels, key = int(shape[0] * shape[1]), (str(run.get("dataset")), str(run.get("architecture")))
    progress = read_progress(run_dir)
    result = finished_result(run_dir, quiet=True) if state.state is RunState.FINISHED else None
    if progress is not None and progress.epoch_seconds and data.get("train"):
        speeds.add(key, int(data["train"]) * len(progress.epoch_seconds), pixels, sum(progress.epoch_seconds))
    elif result is not None:
        speeds.add_result(result, pixels)
    speeds.add_test(key, (progress.test_seconds if progress else None) or (result or {}).get("test_seconds"))


def _seconds_left(speeds: Speeds, work: Work, config: dict[str, Any], specs: dict[str, Any]) -> float | None:
    """A run's training left at the measured pace, then its testing; None before anything was timed."""
    training = speeds.seconds_left([work]) if work.epochs else 0.0
    if training is None:
        return None
    spec = specs.get(work.key[0])
    test_images = config.get("data", {}).get("test") or getattr(spec, "test_count", 0)
    return training + speeds.test_seconds(work.key, int(test_images), work.pixels)


def _describe(run: RunStatus, resume: str | None) -> str:
    if run.state is RunState.FINISHED:
        took = f", {format_duration(run.train_seconds)} training" if run.train_seconds else ""
        stopped = f" (stopped early: {run.epochs_done} of {run.epochs} epochs)" if run.epochs_done < run.epochs else ""
        degenerate = f"; degenerate: {run.degenerate}" if run.degenerate else ""
        return (
            f"test accuracy {run.test_accuracy:.4f}, loss {run.test_loss:.4f}; "
            f"best epoch {run.best_epoch}/{run.epochs_done}{stopped}{took}{degenerate}"
        )
    who = f"pid {run.pid} on host {run.host}" if run.pid is not None else "an unknown process"
    if run.state is RunState.RUNNING and run.testing:
        return f"testing ({run.epochs_done}/{run.epochs} epochs trained), {who}"
    if run.state is RunState.RUNNING:
        return f"training epoch {min(run.epochs_done + 1, run.epochs)}/{run.epochs} ({run.epochs_done} done), {who}"
    if run.state is RunState.INTERRUPTED and run.damage:
        return f"its {RESULT} is damaged ({run.damage}); resume with: {resume} (trains it to its end again)"
    where = "while testing" if run.testing else f"after epoch {run.epochs_done}/{run.epochs}"
    if run.state is RunState.INTERRUPTED and run.stopped_cleanly:
        return f"interrupted {where} (Ctrl-C, {who}; checkpoints kept); resume with: {resume}"
    if run.state is RunState.INTERRUPTED:
        return f"stopped {where}: {who} died; resume with: {resume}"
    return plural(run.epochs, "epoch")


def _cell(value: Any) -> str:
    """A searched setting's value in a table: a number to 4 significant digits, a list as `flip+crop`."""
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        return "+".join(str(v) for v in value)
    return format(value, ".4g") if isinstance(value, float) else str(value)


def format_trials(status: StudyStatus) -> list[str]:
    """A search's lines: a headline (trials finished, pruned, running, failed; the best) and a table of trials."""
    search = status.search or {}
    metric, trials = str(search.get("metric", "value")), int(search.get("trials") or 0)
    count = {state: sum(t.state == state for t in status.trials) for state in ("complete", "pruned", "failed")}
    running = len(status.trials) - sum(count.values())
    better = "lower" if search.get("direction") == "minimize" else "higher"
    scored = [t for t in status.trials if t.state == "complete" and t.value is not None]
    sign = 1.0 if search.get("direction") == "minimize" else -1.0
    best = min(scored, key=lambda t: (sign * float(t.value or 0.0), t.number)) if scored else None
    lead = f"; best: trial {best.number}, {metric} {best.value:.4f}" if best is not None else ""
    lines = [
        f"Search: {count['complete'] + count['pruned']} of {plural(trials, 'trial')} finished ({count['complete']} "
        f"complete, {count['pruned']} pruned), {running} running, {count['failed']} failed; {metric}, {better} is "
        f"better{lead}"
    ]
    if not status.trials:
        return lines
    settings = [str(d.get("setting")) for d in search.get("space", [])]
    header = ["trial", "state", metric, "epochs", *settings]
    rows = []
    for t in status.trials:
        state = f"{t.state} (epoch {t.pruned_epoch})" if t.state == "pruned" else t.state
        if t.state == "running" and t.pid is not None:
            state = f"running, pid {t.pid} on {t.host}"
        value = f"{t.value:.4f}" if t.value is not None else "-"
        rows.append([str(t.number), state, value, str(t.epochs_done), *(_cell(t.params.get(s)) for s in settings)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
              for row in [header, *rows]]  # fmt: skip
    return lines


def format_status(status: StudyStatus) -> str:
    """The human-readable status: a headline, a search's trials, one line per run, the time left."""
    counts = ", ".join(f"{status.count(state)} {state}" for state in RunState)
    width = max((len(run.dir) for run in status.runs), default=0)
    lines = [f"Study {status.name} ({status.study_dir}): {counts}"]
    if status.search is not None:
        lines += format_trials(status)
        if status.runs:
            lines.append("Confirmation runs:")
    lines += [f"  {run.state:<11}  {run.dir:<{width}}  {_describe(run, status.resume)}" for run in status.runs]
    searching = status.search is not None and not _search_done(status)
    if searching:
        lines.append("Time left: the search's trials first, then its confirmation runs")
    elif all(run.state is RunState.FINISHED for run in status.runs):
        lines.append("Time left: none, every run is finished")
    elif status.seconds_left is None:
        lines.append("Time left: known once an epoch has been timed (it comes from the measured epochs)")
    else:
        lines.append(
            f"Time left: about {format_duration(status.seconds_left)}, testing included (from the measured epochs)"
        )
    trials_running = any(t.state == "running" for t in status.trials)
    if status.resume and not status.count(RunState.RUNNING) and not trials_running:
        lines.append(f"Resume with: {status.resume}")
    return "\n".join(lines)


def print_status(study_dir: Path, as_json: bool) -> int:
    """`cnnkit status`: print STUDY_DIR's status (as JSON with `as_json`)."""
    status = study_status(study_dir)
    print(json.dumps(status.as_dict(), indent=2) if as_json else format_status(status))
    return 0
