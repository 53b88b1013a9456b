"""A `Search` in Optuna's terms: the storage, the sampler seeded per trial, the pruner, the parameters of a trial,
and the ticket a trial travels with to the process that trains it (which reports to Optuna each epoch).

Everything in cnnkit that imports Optuna is here, so the rest of the search speaks cnnkit's settings.

Seeding: a sampler is made afresh for each trial, seeded with (the search's seed, the trial's number). Trial
numbers are handed out by the storage, once each, so two processes sharing a search never draw alike because they
were seeded alike, and a search started again does not replay its earlier proposals (its next trial has a new
number). What a trial proposes is still a function of the search's seed, its number and the trials finished before
it: one process given the same file proposes the same trials. The grid sampler is the exception: its order is
the seed's, trial k takes the grid's k-th point (Optuna's GridSampler), which is again distinct per number.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.errors import UsageError
from cnnkit.results.files import trial_dir
from cnnkit.states import TrialState
from cnnkit.studies.search_spec import Choice, Range, Search, label

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler
    from optuna.study import Study as OptunaStudy
    from optuna.trial import FrozenTrial

HEARTBEAT = "cnnkit.heartbeat"  # a trial's user attribute: when its trainer last showed life (seconds since the epoch)
HEARTBEAT_SECONDS = 60.0
# The median pruner waits for this many complete trials and never prunes before this epoch.
MEDIAN_STARTUP_TRIALS = 5
MEDIAN_FIRST_EPOCH = 2
HYPERBAND_REDUCTION = 3


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's own INFO lines and its experimental-feature and re-report warnings kept off the console."""
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=r".*already reported.*")
        warnings.filterwarnings("ignore", message=r".*GridSampler.*")
        yield


# ------------------------------------------------------------------------------------------------ storage
@dataclass(frozen=True)
class StorageRef:
    """Where a search lives: Optuna's journal file in the study directory, or an RDB (`--storage URL`)."""

    journal: str | None = None
    url: str | None = None

    @classmethod
    def of(cls, journal: Path, url: str | None) -> StorageRef:
        return cls(url=url) if url else cls(journal=str(journal))

    def describe(self) -> str:
        return self.url if self.url else f"the journal {self.journal}"

    def open(self) -> Any:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        if self.url:
            try:
                return optuna.storages.RDBStorage(self.url)
            except Exception as exc:  # SQLAlchemy's errors: a bad URL, a database that cannot be reached
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(f"cannot open the search storage {self.url}: {first}") from exc
        assert self.journal is not None
        Path(self.journal).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(self.journal))


# ------------------------------------------------------------------------------------------------ sampling
def trial_seed(seed: int, number: int) -> int:
    """The seed of trial `number`'s sampler: (search seed, trial number) mixed, so neighbours differ entirely."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def _sampler_maker(search: Search) -> Callable[[int], BaseSampler]:
    from optuna.samplers import GridSampler, RandomSampler, TPESampler

    if search.sampler == "grid":
        space = {name: [label(v) for v in dim.values] for name, dim in search.space.items() if isinstance(dim, Choice)}
        return lambda number: GridSampler(space, seed=search.seed)
    if search.sampler == "random":
        return lambda number: RandomSampler(seed=trial_seed(search.seed, number))
    # constant_liar: trials still running elsewhere count as poor, so parallel trials spread out
    return lambda number: TPESampler(seed=trial_seed(search.seed, number), constant_liar=True)


def make_sampler(search: Search) -> BaseSampler:
    from optuna.samplers import BaseSampler, GridSampler

    make = _sampler_maker(search)

    class PerTrialSeeded(BaseSampler):
        """The search's sampler, made afresh for each trial with that trial's seed (see the module docstring)."""

        def __init__(self) -> None:
            self._made: dict[int, BaseSampler] = {}

        def _for(self, trial: FrozenTrial) -> BaseSampler:
            if trial.number not in self._made:
                self._made = {trial.number: make(trial.number)}  # one trial at a time is sampled here
            return self._made[trial.number]

        def before_trial(self, study: OptunaStudy, trial: FrozenTrial) -> None:
            self._for(trial).before_trial(study, trial)

        def infer_relative_search_space(self, study: OptunaStudy, trial: FrozenTrial) -> dict[str, BaseDistribution]:
            return self._for(trial).infer_relative_search_space(study, trial)

        def sample_relative(
            self, study: OptunaStudy, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
        ) -> dict[str, Any]:
            return self._for(trial).sample_relative(study, trial, search_space)

        def sample_independent(
            self, study: OptunaStudy, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
        ) -> Any:
            return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

        def after_trial(
            self, study: OptunaStudy, trial: FrozenTrial, state: Any, values: Sequence[float] | None
        ) -> None:
            sampler = self._for(trial)
            if not isinstance(sampler, GridSampler):  # GridSampler's only stops optimize(), never run here
                sampler.after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:
            self._made.clear()

    return PerTrialSeeded()


def make_pruner(name: str, epochs: int) -> Any:
    """median: Optuna's MedianPruner after MEDIAN_STARTUP_TRIALS complete trials, from epoch MEDIAN_FIRST_EPOCH;
    hyperband: HyperbandPruner from 1 to `epochs` epochs; none: never pruned."""
    from optuna.pruners import HyperbandPruner, MedianPruner, NopPruner

    if name == "median":
        return MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=MEDIAN_FIRST_EPOCH)
    if name == "hyperband":
        return HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=HYPERBAND_REDUCTION)
    return NopPruner()


def open_study(search: Search, name: str, storage: StorageRef, trial_epochs: int) -> OptunaStudy:
    import optuna

    with quiet_optuna():
        return optuna.create_study(
            study_name=name,
            storage=storage.open(),
            sampler=make_sampler(search),
            pruner=make_pruner(search.pruner, trial_epochs),
            direction=search.direction,
            load_if_exists=True,
        )


def delete_study(name: str, storage: StorageRef) -> None:
    """Forget a search kept in an RDB (`--fresh`); a journal file is simply removed by the caller."""
    import optuna

    with contextlib.suppress(KeyError), quiet_optuna():
        optuna.delete_study(study_name=name, storage=storage.open())


# ------------------------------------------------------------------------------------------------ parameters
def distribution(search: Search, name: str) -> BaseDistribution:
    """The Optuna distribution of one searched setting (a choice by its values' labels)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from cnnkit.training.config import BY_NAME

    dim = search.space[name]
    if isinstance(dim, Choice):
        return CategoricalDistribution([label(v) for v in dim.values])
    if BY_NAME[name].kind is int:
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=int(dim.step or 1))
    return FloatDistribution(float(dim.low), float(dim.high), log=dim.log, step=dim.step)


def suggest(trial: optuna.Trial, search: Search) -> dict[str, Any]:
    """The trial's values of the searched settings, as the settings hold them (suggested now, or those it has)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    with quiet_optuna():
        for name in search.space:  # a value the trial has already is kept
            dist = distribution(search, name)
            if isinstance(dist, CategoricalDistribution):
                trial.suggest_categorical(name, dist.choices)  # type: ignore[arg-type]
            elif isinstance(dist, IntDistribution):
                trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
            else:
                trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)  # type: ignore[attr-defined]
    return decode(search, trial.params)


def decode(search: Search, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's parameters (a choice by its label) as the settings' values; a setting not suggested is left out."""
    values = {}
    for name, dim in search.space.items():
        if name not in params:
            continue
        if isinstance(dim, Choice):
            labels = [label(v) for v in dim.values]
            values[name] = dim.values[labels.index(params[name])]
        elif isinstance(dim, Range):
            values[name] = params[name]
    return values


def encode(search: Search, values: dict[str, Any]) -> dict[str, Any]:
    """The settings' values as Optuna's parameters (a choice by its label)."""
    return {name: label(value) if isinstance(search.space[name], Choice) else value for name, value in values.items()}


def cnnkit_state(trial: FrozenTrial) -> TrialState:
    """Optuna's state of a trial in cnnkit's words (a waiting trial counts as running: it is not finished)."""
    from optuna.trial import TrialState as OptunaState

    return {
        OptunaState.COMPLETE: TrialState.COMPLETE,
        OptunaState.PRUNED: TrialState.PRUNED,
        OptunaState.FAIL: TrialState.FAILED,
    }.get(trial.state, TrialState.RUNNING)


# ------------------------------------------------------------------------------------------------ in the trainer
@dataclass(frozen=True)
class TrialTicket:
    """What the process that trains a trial needs of the search (plain data: it crosses pipes and Ray)."""

    number: int
    trial_id: int
    study_name: str
    storage: StorageRef
    pruner: str
    metric: str
    epochs: int
    params: dict[str, Any]

    def run_dir(self, out: Path, study: str) -> Path:
        return trial_dir(Path(out) / study, self.number)

    def facts(self) -> dict[str, Any]:
        """What the trial's result.json records of it besides its state and value."""
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}
        return {"number": self.number, "metric": self.metric, "params": params}

    def reporter(self) -> OptunaReporter:
        return OptunaReporter(self)


class OptunaReporter:
    """Reports a trial's value each epoch to the search's storage and asks its pruner whether to stop; meanwhile it
    beats in the storage every HEARTBEAT_SECONDS (from the moment its process takes the trial until `close`), so
    that other processes know the trial is alive even without sharing its directory."""

    def __init__(self, ticket: TrialTicket) -> None:
        import optuna
        from optuna.samplers import RandomSampler

        with quiet_optuna():
            study = optuna.load_study(
                study_name=ticket.study_name,
                storage=ticket.storage.open(),
                sampler=RandomSampler(),  # nothing is sampled here
                pruner=make_pruner(ticket.pruner, ticket.epochs),
            )
            self.trial = optuna.trial.Trial(study, ticket.trial_id)
        self._stop = threading.Event()
        self._beat()
        self._heart = threading.Thread(target=self._beating, name="trial-heartbeat", daemon=True)
        self._heart.start()

    def _beat(self) -> None:
        with contextlib.suppress(Exception), quiet_optuna():  # a finished trial or a storage hiccup: no beat
            self.trial.set_user_attr(HEARTBEAT, time.time())

    def _beating(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._beat()

    def close(self) -> None:
        """Stop beating (the trial's training is over, or its process stops)."""
        self._stop.set()

    def report(self, epoch: int, value: float) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError

        with quiet_optuna():
            try:
                self.trial.report(value, epoch)
                return bool(self.trial.should_prune())
            except (UpdateFinishedTrialError, RuntimeError, ValueError):
                return False  # told finished elsewhere meanwhile: nothing to prune
