"""`cnnkit run --study FILE` for a study with a `[search]` table: an Optuna search driven ask-and-tell, whose trials
cnnkit's executors train (this process, `--jobs N` workers, Ray), then the confirmation of the best settings over
seeds beside the baseline, as ordinary runs of the study.

The search (`cnnkit.studies.optuna_bridge`) lives in Optuna's journal in the study directory (or an RDB given as
`--storage URL`), so several processes, on one machine or on machines sharing the disk, may work on one search:

- A trial is asked for only when a slot is free. Right after it is asked, the trials numbered before it are
  counted: when `trials` of them are finished or running (failed ones aside), the new one is surplus, marked so
  and closed as failed before anything is sampled or trained. Trial numbers are handed out once each by the
  storage, so however many processes ask at once, no more than `trials` trials are ever kept.
- Each trial trains as a run in `trials/<number>/`, under that directory's lock: no two processes train a trial.
- A trial is told (complete with its value, or pruned) by the process that trained it, from its result.json;
  any process that finds a trial finished on disk but still running in the storage (its process was killed
  after writing result.json) tells it.
- Resuming: a trial still running in the storage that no live process holds is taken over and resumed from its
  last checkpoint, keeping its number and settings, when its directory shows that training started (its trainer
  died), when the process that asked for it (recorded with it) was on this machine and is gone, or when no sign
  of life came from it for `STALE_SECONDS`: the process training a trial beats in the storage every
  `optuna_bridge.HEARTBEAT_SECONDS` (so machines without a shared disk, sharing an RDB, tell a live trial from
  a dead one too). The sampler never replays: trial numbers only grow, and each trial's sampler is seeded with
  the search's seed and its number.
- The search ends at exactly `trials` finished (complete or pruned) trials; a trial that failed does not count
  (a failure stops this process; started again, the search asks for another trial).

The test set stays closed until the confirmation: trials are judged on validation only and record no test
figures. The confirmation runs, the `top` best complete trials' settings and (with `baseline`) the study's
defaults without the searched settings, each with `seeds` seeds at the study's own budget, are ordinary run
directories listed in study.json (with their role), so `cnnkit report`, `cnnkit status` and `load_study` see them.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.console.progress import plural
from cnnkit.console.streams import progress_stream
from cnnkit.errors import UsageError
from cnnkit.results.files import journal_path, trial_dir, trials_folder, trials_table
from cnnkit.results.reading import epochs_logged, finished_trial, has_started
from cnnkit.results.trials import TrialRow, write_trials_table
from cnnkit.states import JobState, TrialState
from cnnkit.storage.locks import command_pid, lock_holder
from cnnkit.studies.jobs import Job, JobFailed
from cnnkit.studies.messages import JobReport
from cnnkit.studies.optuna_bridge import (
    HEARTBEAT,
    StorageRef,
    TrialTicket,
    cnnkit_state,
    decode,
    delete_study,
    open_study,
    quiet_optuna,
    suggest,
)
from cnnkit.studies.search_spec import Search, label
from cnnkit.studies.study import Study, launch_record, manifest, refuse_shared_directories, train_planned
from cnnkit.training.config import BY_NAME

if TYPE_CHECKING:
    from optuna.study import Study as OptunaStudy
    from optuna.trial import FrozenTrial

POLL_SECONDS = 2.0
STALE_SECONDS = 600.0  # a trial without a sign of life for this long (asked, or its last heartbeat) is abandoned
OWNER = "cnnkit.owner"  # a trial's user attribute: the process that asked for it (or took it over), and when
SURPLUS = "cnnkit.surplus"  # a trial asked for beyond `trials` (closed as failed at once, never shown)
DEFINITION = "cnnkit.search"  # the study's user attribute: what decides its trials (`Search.identity`)


# ------------------------------------------------------------------------------------------------ the plan
def trial_config(search: Search, values: dict[str, Any], epochs: int, subset: int | None) -> Any:
    """The RunConfig of a trial: the search's base with the trial's values, its budget and the search's seed."""
    return replace(search.base.template, **values, seed=search.seed, epochs=epochs, subset=subset)


def baseline_settings(search: Search) -> dict[str, Any]:
    """The baseline: the study's defaults without the searched settings (each back at the schema's default)."""
    return {name: BY_NAME[name].default for name in search.space}


def check_space(search: Search, registries: Any, epochs: int, subset: int | None) -> None:
    """Every value a trial may take, through the schema's own checks (`RunConfig.checked`: plugin names, rules),
    before anything trains: each choice, and each end of each range."""
    from cnnkit.studies.search_spec import Choice

    trial_config(search, {}, epochs, subset).checked(registries)
    for name, dim in search.space.items():
        values = dim.values if isinstance(dim, Choice) else (dim.low, dim.high)
        for value in values:
            trial_config(search, {name: value}, epochs, subset).checked(registries)


def confirmation_plan(
    search: Search,
    best: Sequence[tuple[int, dict[str, Any]]],
    epochs: int | None,
    subset: int | None,
    seeds: Sequence[int] | None,
) -> list[tuple[Any, dict[str, Any]]]:
    """(RunConfig, role) of the confirmation runs: each of the `best` trials' values (trial number, values) and the
    baseline, each with the confirmation's seeds at the study's budget (the command line's overrides applied)."""
    base = search.base.template
    budget = {"epochs": epochs or base.epochs, "subset": subset if subset is not None else base.subset}
    seed_list = list(seeds) if seeds is not None else list(range(search.confirm.seeds))
    configurations: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for rank, (number, values) in enumerate(best, start=1):
        configurations.append((values, {"role": "tuned", "trial": number, "rank": rank}))
    if search.confirm.baseline:
        configurations.append((baseline_settings(search), {"role": "baseline", "trial": None, "rank": None}))
    plan = []
    for values, role in configurations:
        for seed in seed_list:
            plan.append((replace(base, **values, **budget, seed=seed), role))
    return plan


# ------------------------------------------------------------------------------------------------ the search
def run_search(
    study: Study,
    options: Any,
    out: Path,
    *,
    fresh: bool = False,
    epochs: int | None = None,
    subset: int | None = None,
    seeds: Sequence[int] | None = None,
    registries: Any,
    command: str | None = None,
    jobs: int | None = 1,
    executor: str = "local",
    ray_address: str | None = None,
    storage: str | None = None,
) -> list[Any]:
    """Search (see the module docstring), then train the confirmation; the confirmation runs' RunOutcomes.

    `epochs`, `subset` and `seeds` (the command line's overrides) apply to the confirmation, and to the trials'
    budget where `budget` leaves it to the study."""
    from cnnkit.console.study_progress import check_datasets
    from cnnkit.studies.resources import check_parallel_options

    search: Search = study.search
    out = Path(out).absolute()  # workers and Ray may start elsewhere
    study_dir = out / study.name
    trial_epochs, trial_subset = search.trial_budget(epochs, subset)
    check_space(search, registries, trial_epochs, trial_subset)
    baseline = confirmation_plan(search, [], epochs, subset, seeds)
    for config, _ in baseline:
        config.checked(registries)
    if executor == "ray" or (jobs or 1) > 1:
        check_parallel_options(options)
    check_datasets([search.base.template], registries, options.data_dir)
    ref = StorageRef.of(journal_path(study_dir), storage)
    if fresh:
        _start_over(study_dir, study.name, ref)
    with quiet_optuna():
        optuna_study = open_study(search, study.name, ref, trial_epochs)
        _check_definition(optuna_study, search, study_dir, ref, epochs, subset)
    record = _manifest(study, search, baseline, registries, command, ref)
    _write_manifest(study_dir, record)
    driver = TrialDriver(search, optuna_study, ref, study.name, options, out, trial_epochs, trial_subset)
    driver.announce()
    driver.run(executor, jobs, ray_address)
    best = driver.best()
    if not best and not search.confirm.baseline:
        print("search: no trial completed, so there is nothing to confirm", file=progress_stream(), flush=True)
        return []
    plan = confirmation_plan(search, best, epochs, subset, seeds)
    planned = [(config.checked(registries), study.search.base) for config, _ in plan]
    planned, roles = _distinct(planned, [role for _, role in plan])
    refuse_shared_directories(study, planned)
    record = _manifest(study, search, list(zip([c for c, _ in planned], roles, strict=True)), registries, command, ref)
    driver.announce_confirmation(best, len(planned))
    return train_planned(
        study, planned, record, options, out, fresh=fresh, jobs=jobs, executor=executor,
        ray_address=ray_address, registries=registries,
    )  # fmt: skip


def _distinct(planned: list[tuple[Any, Any]], roles: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]]]:
    """The confirmation without repeats: a tuned configuration equal to the baseline runs once, as the baseline."""
    seen: dict[str, int] = {}
    kept: list[tuple[Any, Any]] = []
    kept_roles: list[dict[str, Any]] = []
    for pair, role in zip(planned, roles, strict=True):
        name = pair[0].dir_name
        if name in seen:
            kept_roles[seen[name]] = role if role["role"] == "baseline" else kept_roles[seen[name]]
            continue
        seen[name] = len(kept)
        kept.append(pair)
        kept_roles.append(role)
    return kept, kept_roles


def _manifest(
    study: Study,
    search: Search,
    plan: Sequence[tuple[Any, dict[str, Any]]],
    registries: Any,
    command: str | None,
    ref: StorageRef,
) -> dict[str, Any]:
    """study.json of a search study: its search and the confirmation runs known so far, each with its role."""
    checked = [(config.checked(registries), search.base) for config, _ in plan]
    record = manifest(study, checked)
    for entry, (_, role) in zip(record["runs"], plan, strict=True):
        entry.update(role)
        if role["role"] != "baseline":
            entry["reference"] = None
    storage = {"journal": os.path.basename(ref.journal)} if ref.journal else {"url": _hide_password(ref.url)}
    record["search"] = {**search.record(), "storage": storage}
    return {**record, **launch_record(command)}


def _write_manifest(study_dir: Path, record: dict[str, Any]) -> None:
    from cnnkit.results.files import manifest_path
    from cnnkit.storage.atomic import write_json_atomic

    try:
        write_json_atomic(manifest_path(study_dir), record)
    except OSError as exc:
        raise UsageError(f"cannot write to {study_dir}: {exc.strerror or exc}; choose another --out") from exc


def _hide_password(url: str | None) -> str | None:
    """An RDB URL as study.json keeps it: without its password."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


def _start_over(study_dir: Path, name: str, ref: StorageRef) -> None:
    """--fresh: the search's storage and trials are removed (refused while a process trains one of them)."""
    folder = trials_folder(study_dir)
    held = [path.name for path in folder.glob("*") if path.is_dir() and lock_holder(path) is not None]
    if held:
        raise UsageError(f"--fresh cannot start the search over while trial(s) {', '.join(sorted(held))} are trained")
    if ref.journal:
        for path in (Path(ref.journal), Path(f"{ref.journal}.lock")):
            path.unlink(missing_ok=True)
    else:
        delete_study(name, ref)
    shutil.rmtree(folder, ignore_errors=True)
    trials_table(study_dir).unlink(missing_ok=True)


def _check_definition(
    optuna_study: OptunaStudy,
    search: Search,
    study_dir: Path,
    ref: StorageRef,
    epochs: int | None,
    subset: int | None,
) -> None:
    """Record what decides the trials with the search; a search kept there with another definition is refused."""
    import json

    mine = json.loads(json.dumps(search.identity(epochs, subset)))
    stored = optuna_study.user_attrs.get(DEFINITION)
    if stored is None:
        optuna_study.set_user_attr(DEFINITION, mine)
        return
    if stored != mine:
        changed = sorted(k for k in {*stored, *mine} if stored.get(k) != mine.get(k))
        raise UsageError(
            f"{ref.describe()} holds the search '{optuna_study.study_name}' with another definition "
            f"({', '.join(changed)} differ); pass --fresh to start it over, or --out to search elsewhere"
        )


@dataclass
class _Owner:
    host: str
    pid: int

    @classmethod
    def me(cls) -> _Owner:
        return cls(socket.gethostname(), command_pid())

    @classmethod
    def of(cls, trial: FrozenTrial) -> _Owner | None:
        data: Any = trial.user_attrs.get(OWNER)
        try:
            return cls(str(data["host"]), int(data["pid"]))
        except (TypeError, KeyError, ValueError):
            return None

    def record(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "since": time.time()}

    def gone(self) -> bool:
        """True when this owner was a process on this machine that no longer runs."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


class TrialDriver:
    """The trials of one search in this process: asks, takes over, hands trials to an executor and tells them."""

    def __init__(
        self,
        search: Search,
        optuna_study: OptunaStudy,
        ref: StorageRef,
        name: str,
        options: Any,
        out: Path,
        epochs: int,
        subset: int | None,
    ) -> None:
        self.search, self.study, self.ref, self.name = search, optuna_study, ref, name
        self.options, self.out, self.epochs, self.subset = options, out, epochs, subset
        self.study_dir = out / name
        self.target = int(search.trials or 0)
        self.me = _Owner.me()
        self.inflight: dict[int, Job] = {}
        self._waiting_said = False

    # -- the storage's view ----------------------------------------------------------------------------------
    def trials(self) -> list[FrozenTrial]:
        """The search's trials, surplus ones aside."""
        with quiet_optuna():
            return [t for t in self.study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS)]

    def finished(self, trials: Sequence[FrozenTrial] | None = None) -> list[FrozenTrial]:
        return [t for t in (trials if trials is not None else self.trials()) if cnnkit_state(t).finished]

    def best(self) -> list[tuple[int, dict[str, Any]]]:
        """(number, values) of the `top` best complete trials, best first, distinct in their values."""
        complete = [t for t in self.trials() if cnnkit_state(t) is TrialState.COMPLETE and t.value is not None]
        sign = 1.0 if self.search.direction == "minimize" else -1.0
        ranked = sorted(complete, key=lambda t: (sign * float(t.value), t.number))  # type: ignore[arg-type]
        chosen: list[tuple[int, dict[str, Any]]] = []
        for trial in ranked:
            values = decode(self.search, trial.params)
            if all(values != other for _, other in chosen):
                chosen.append((trial.number, values))
            if len(chosen) == self.search.confirm.top:
                break
        return chosen

    # -- the loop ----------------------------------------------------------------------------------------------
    def run(self, executor: str, jobs: int | None, ray_address: str | None) -> None:
        """Train trials until `trials` of them are finished (by this process or others)."""
        from cnnkit.studies.executors import auto_parallel, open_slots

        self.reconcile()
        left = self.target - len(self.finished())
        if left <= 0:
            self.write_table()
            return
        parallel = auto_parallel(jobs, left, self.options, executor)
        try:
            with open_slots(executor, jobs, parallel, ray_address, self.target, self.options) as slots:
                while self.reconcile() < self.target:
                    while slots.running() < slots.capacity:
                        job = self.take_over() or self.ask()
                        if job is None:
                            break
                        self.inflight[job.trial.number] = job
                        slots.submit(job)
                    self.write_table()
                    if slots.running():
                        for report in slots.wait():
                            self.ended(report)
                    else:
                        self.wait_for_others()
        finally:
            self.write_table()

    def reconcile(self) -> int:
        """Tell every trial found finished on disk but still running in the storage; the finished count."""
        trials = self.trials()
        for trial in trials:
            if cnnkit_state(trial) is TrialState.RUNNING:
                result = finished_trial(trial_dir(self.study_dir, trial.number), quiet=True)
                if result is not None:
                    self.tell(trial.number, result)
        return len(self.finished())

    def ask(self) -> Job | None:
        """A new trial, unless `trials` are finished or running already (then None). Surplus: see the module."""
        trials = self.trials()
        busy = [t for t in trials if cnnkit_state(t) is not TrialState.FAILED]
        if len(busy) >= self.target:
            return None
        with quiet_optuna():
            trial = self.study.ask()
            trial.set_user_attr(OWNER, self.me.record())
        if self._surplus(trial.number):
            with quiet_optuna():
                trial.set_user_attr(SURPLUS, True)
                self.study.tell(trial, state=_optuna_state(TrialState.FAILED), skip_if_finished=True)
            return None
        values = suggest(trial, self.search)
        return self.job(trial.number, trial._trial_id, values)

    def _surplus(self, number: int) -> bool:
        """True when `trials` trials numbered below `number` are finished or running (failed ones aside)."""
        before = [t for t in self.trials() if t.number < number and cnnkit_state(t) is not TrialState.FAILED]
        return len(before) >= self.target

    def take_over(self) -> Job | None:
        """A trial still running in the storage that nobody trains (see the module docstring), to resume here."""
        import optuna

        now = time.time()
        for frozen in self.trials():
            number = frozen.number
            if cnnkit_state(frozen) is not TrialState.RUNNING or number in self.inflight:
                continue
            directory = trial_dir(self.study_dir, number)
            if lock_holder(directory) is not None or finished_trial(directory, quiet=True) is not None:
                continue
            owner = _Owner.of(frozen)
            abandoned = (
                has_started(directory)
                or owner is None
                or owner == self.me
                or owner.gone()
                or now - _last_sign_of_life(frozen) > STALE_SECONDS
            )
            if not abandoned:
                continue
            with quiet_optuna():
                trial = optuna.trial.Trial(self.study, frozen._trial_id)
                if self._surplus(number):  # asked by a process killed before it could check
                    trial.set_user_attr(SURPLUS, True)
                    self.study.tell(trial, state=_optuna_state(TrialState.FAILED), skip_if_finished=True)
                    continue
                trial.set_user_attr(OWNER, self.me.record())
                values = suggest(trial, self.search)
            if owner != self.me:
                print(
                    f"search: trial {number} was left unfinished; resuming it here", file=progress_stream(), flush=True
                )
            return self.job(number, frozen._trial_id, values)
        return None

    def job(self, number: int, trial_id: int, values: dict[str, Any]) -> Job:
        from cnnkit.storage.locks import command_pid as pid

        ticket = TrialTicket(
            number, trial_id, self.name, self.ref, self.search.pruner, self.search.metric, self.epochs, values
        )
        config = trial_config(self.search, values, self.epochs, self.subset)
        place = 1 + sum(1 for t in self.trials() if t.number < number and cnnkit_state(t) is not TrialState.FAILED)
        return Job(
            config,
            self.options,
            min(place, self.target),
            self.out,
            self.name,
            False,
            None,
            command_pid=pid(),
            trial=ticket,
            title=f"trial {number}: {self.describe(values)}",
        )

    def describe(self, values: dict[str, Any]) -> str:
        """`lr 0.001234 · dropout 0.25 · augment flip+crop`: a trial's sampled values."""
        parts = []
        for name, value in values.items():
            shown = label(value)
            parts.append(f"{name} {format(shown, '.4g') if isinstance(shown, float) else shown}")
        return " · ".join(parts)

    def ended(self, report: JobReport) -> None:
        """Act on how a trial's job ended: tell it, let another process have it, or stop the search."""
        job = next((j for j in self.inflight.values() if j.name == report.name), None)
        if job is None:
            return
        del self.inflight[job.trial.number]
        if report.state is JobState.INTERRUPTED:
            raise KeyboardInterrupt
        if report.state is JobState.FAILED:
            if lock_holder(job.run_dir) is None:
                self.tell(job.trial.number, None)
            self.write_table()
            raise JobFailed(report)
        if report.state is JobState.LOCKED:
            return  # another process trains it: it tells it
        result = job.finished()
        if result is not None:
            self.tell(job.trial.number, result)
            self.progress_line()

    def tell(self, number: int, result: dict[str, Any] | None) -> None:
        """Close trial `number` from its result.json (complete with its value, or pruned); failed without one."""
        from optuna.exceptions import UpdateFinishedTrialError

        facts = (result or {}).get("trial") or {}
        state = TrialState(facts["state"]) if facts.get("state") in ("complete", "pruned") else TrialState.FAILED
        value = facts.get("value")
        if state is TrialState.COMPLETE and value is None:
            state = TrialState.FAILED  # no epoch had a finite value of the metric: it diverged
        with quiet_optuna():
            try:
                if state is TrialState.COMPLETE and value is not None:
                    self.study.tell(number, float(value), skip_if_finished=True)
                else:
                    self.study.tell(number, state=_optuna_state(state), skip_if_finished=True)
            except UpdateFinishedTrialError:
                pass  # another process told it first

    def wait_for_others(self) -> None:
        """Nothing for this process to train: the trials left are trained elsewhere. Wait a moment."""
        if not self._waiting_said:
            running = [t.number for t in self.trials() if cnnkit_state(t) is TrialState.RUNNING]
            numbers = ", ".join(str(n) for n in running)
            print(
                f"search: waiting for trial(s) {numbers} that other processes train", file=progress_stream(), flush=True
            )
            self._waiting_said = True
        time.sleep(POLL_SECONDS)

    # -- what is shown ---------------------------------------------------------------------------------------
    def rows(self) -> list[TrialRow]:
        rows = []
        for trial in self.trials():
            state = cnnkit_state(trial)
            directory = trial_dir(self.study_dir, trial.number)
            result = finished_trial(directory, quiet=True)
            facts = (result or {}).get("trial") or {}
            epochs = int(result.get("stopped_epoch") or 0) if result else epochs_logged(directory)
            value = trial.value if state.finished else None
            if state is TrialState.PRUNED and facts.get("value") is not None:
                value = facts["value"]
            rows.append(
                TrialRow(
                    trial.number, state, value, decode(self.search, trial.params), epochs, facts.get("pruned_epoch")
                )
            )
        return rows

    def write_table(self) -> None:
        """trials.csv from the storage and the trials' directories."""
        write_trials_table(self.study_dir, list(self.search.space), self.rows())

    def announce(self) -> None:
        search = self.search
        finished = self.finished()
        direction = "lower" if search.direction == "minimize" else "higher"
        subset = f" on the first {self.subset:,} training images" if self.subset else ""
        done = f"; {len(finished)} finished already" if finished else ""
        print(
            f"search {self.name}: {plural(self.target, 'trial')} ({search.sampler} sampler, seed {search.seed}; "
            f"{search.pruner} pruner; {search.metric}, {direction} is better), each {plural(self.epochs, 'epoch')}"
            f"{subset}; storage: {self.ref.describe()}{done}",
            file=progress_stream(),
            flush=True,
        )

    def progress_line(self) -> None:
        finished = self.finished()
        pruned = sum(cnnkit_state(t) is TrialState.PRUNED for t in finished)
        best = self.best()
        lead = ""
        if best:
            number, _ = best[0]
            value = next(t.value for t in finished if t.number == number)
            lead = f"; best so far: trial {number}, {self.search.metric} {value:.4f}"
        print(
            f"search: {len(finished)} of {plural(self.target, 'trial')} finished ({pruned} pruned){lead}",
            file=progress_stream(),
            flush=True,
        )

    def announce_confirmation(self, best: Sequence[tuple[int, dict[str, Any]]], runs: int) -> None:
        finished = self.finished()
        pruned = sum(cnnkit_state(t) is TrialState.PRUNED for t in finished)
        lines = [f"search: done, {len(finished) - pruned} complete and {pruned} pruned trials"]
        for number, values in best:
            value = next(t.value for t in finished if t.number == number)
            lines.append(f"  best: trial {number}, {self.search.metric} {value:.4f}: {self.describe(values)}")
        confirm = self.search.confirm
        baseline = " and the baseline" if confirm.baseline else ""
        lines.append(f"confirmation: {plural(runs, 'run')}, the best settings{baseline}, tested on the test set")
        print("\n".join(lines), file=progress_stream(), flush=True)


def _last_sign_of_life(trial: FrozenTrial) -> float:
    """When the trial last showed life (seconds since the epoch): its trainer's heartbeat, or when it was asked."""
    owner: Any = trial.user_attrs.get(OWNER) or {}
    times = [trial.user_attrs.get(HEARTBEAT), owner.get("since") if isinstance(owner, dict) else None]
    known = [float(t) for t in times if isinstance(t, (int, float))]
    return max(known) if known else 0.0


def _optuna_state(state: TrialState) -> Any:
    from optuna.trial import TrialState as OptunaState

    return {TrialState.PRUNED: OptunaState.PRUNED, TrialState.FAILED: OptunaState.FAIL}[state]
