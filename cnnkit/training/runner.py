"""One training run: its run directory (refused, claimed, skipped or resumed), the run built (training.build), fitted,
tested and recorded in the files of the results contract."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cnnkit.console.progress import RunProgress, run_label
from cnnkit.console.terminal import quiet_lightning, stop_on_sigint
from cnnkit.errors import CnnkitError, RunError
from cnnkit.plugins import Registries, get_registries
from cnnkit.results.files import RunFiles
from cnnkit.results.reading import epochs_logged, finished_result, finished_trial, stored_settings
from cnnkit.results.records import best_logged_epoch, result_record, trial_record, write_predictions
from cnnkit.results.stats import best_value
from cnnkit.states import TrialState
from cnnkit.storage.atomic import write_json_atomic
from cnnkit.storage.claims import FinishedMeanwhile, RunClaim, refuse_if_locked
from cnnkit.storage.damage import clear_for_fresh_start
from cnnkit.storage.locks import LOCK_NAME
from cnnkit.training.build import BuiltRun, build_run
from cnnkit.training.config import RunConfig

if TYPE_CHECKING:
    from cnnkit.training.pruning import PruneOnValidation, Reporter

DEFAULT_OUT = Path("runs")
SINGLE_STUDY = "single"


@dataclass(frozen=True)
class TrainerOptions:
    """How and where to train; these do not change which run it is."""

    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    precision: str = "32-true"
    num_nodes: int = 1
    data_dir: str | None = None
    quiet: bool = False
    verbose: bool = False
    logger: str | None = None
    compile: bool = False
    channels_last: bool = False


@dataclass
class RunOutcome:
    run_dir: Path
    result: dict[str, Any]
    skipped: bool = False


class SearchTrial(Protocol):
    """A search's trial to train (`cnnkit.studies.optuna_bridge.TrialTicket`): its directory, the metric it is
    judged on, where it reports each epoch, and the facts its result.json records of it."""

    metric: str

    def run_dir(self, out: Path, study: str) -> Path: ...

    def reporter(self) -> Reporter: ...

    def facts(self) -> dict[str, Any]: ...


def run_directory(out: Path, study: str, config: RunConfig) -> Path:
    return Path(out) / study / config.dir_name


def execute(
    config: RunConfig,
    options: TrainerOptions = TrainerOptions(),
    out: Path = DEFAULT_OUT,
    study: str = SINGLE_STUDY,
    fresh: bool = False,
    registries: Registries | None = None,
    before_write: Callable[[], None] | None = None,
    progress: RunProgress | None = None,
    trial: SearchTrial | None = None,
) -> RunOutcome:
    """Train, evaluate and record one run; a finished run is skipped, an unfinished one resumed.

    Everything that can be refused (names, numbers, data files, devices) is checked before anything is written;
    `before_write` is called just before the run directory is first touched. `progress` labels the run on the
    console (and carries a study's clock). A search's `trial` trains into its own directory, reports to the
    search each epoch (and may be pruned) and is never tested: its result.json holds validation figures only.
    """
    registries = registries or get_registries()
    config = config.checked(registries)
    run_dir = trial.run_dir(out, study) if trial else run_directory(out, study, config)
    finished = finished_trial if trial else finished_result
    check_run_directory(run_dir, config, fresh)
    helper_rank = _launched_by_lightning()
    if not helper_rank:
        refuse_if_locked(run_dir)  # RunLocked: the caller skips it
    result = None if fresh else finished(run_dir)
    if result is not None:
        return RunOutcome(run_dir, result, skipped=True)
    progress = progress or RunProgress(run_label(config))
    claim_run = RunClaim(run_dir, fresh, lock=not helper_rank, finished=finished)
    with quiet_lightning(options.quiet or not options.verbose), claim_run as claim:
        try:
            hook = claim.before(before_write)
            return _train(config, options, run_dir, study, registries, fresh, hook, progress, trial)
        except FinishedMeanwhile as done:
            return RunOutcome(run_dir, done.result, skipped=True)


def check_run_directory(run_dir: Path, config: RunConfig, fresh: bool) -> None:
    """Refuse a run directory that holds another configuration (unless --fresh) or is not a run directory."""
    files = RunFiles(run_dir)
    if fresh:
        if any(p.name != LOCK_NAME for p in _entries(run_dir)) and not (
            files.config.exists() or files.checkpoints.exists()
        ):
            raise RunError(f"{run_dir} exists but is not a cnnkit run directory; refusing to delete it")
        return
    stored = stored_settings(run_dir)
    if stored is None:
        return
    differences = config.differences_from(stored)
    if differences:
        raise RunError(
            f"{run_dir} holds a run with another configuration ({'; '.join(differences)}); "
            f"{what_fresh_deletes(run_dir)}, or --out writes this one elsewhere"
        )


def what_fresh_deletes(run_dir: Path) -> str:
    """What --fresh would throw away in `run_dir`, said before anyone passes it."""
    if finished_result(run_dir, quiet=True) is not None:
        return "--fresh would delete that finished run (its result and checkpoints) and train this one instead"
    epochs = epochs_logged(run_dir)
    trained = f"its {epochs} trained epoch{'' if epochs == 1 else 's'}" if epochs else "its files"
    return f"--fresh would delete {trained} and start this one over"


def _entries(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.is_dir() else []


def create_run_directory(run_dir: Path, fresh: bool) -> None:
    """Make the run directory (emptied first with --fresh) and check that it can be written."""
    try:
        # Under DDP Lightning re-executes the CLI in each further process: only the launching one may wipe.
        if fresh and run_dir.exists() and not _launched_by_lightning():
            clear_for_fresh_start(run_dir)  # keeps the lock this process holds
        RunFiles(run_dir).checkpoints.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"  # one per process: DDP ranks probe at the same time
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write to {run_dir}: {exc.strerror or exc}; choose another --out") from exc


def _launched_by_lightning() -> bool:
    """True in the processes Lightning's DDP launcher started (ranks other than local 0 on node 0)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def _train(
    config: RunConfig,
    options: TrainerOptions,
    run_dir: Path,
    study: str,
    registries: Registries,
    fresh: bool,
    before_write: Callable[[], None] | None,
    progress: RunProgress,
    trial: SearchTrial | None = None,
) -> RunOutcome:
    if trial is None:
        run = build_run(config, options, run_dir, registries, progress, study)  # refuses what it must, writes nothing
        if before_write is not None:
            before_write()
        create_run_directory(run_dir, fresh)
        return fit_test_record(run)
    from cnnkit.training.pruning import PruneOnValidation

    reporter = trial.reporter()
    try:
        pruner = PruneOnValidation(trial.metric, reporter)
        run = build_run(config, options, run_dir, registries, progress, study, extra_callbacks=[pruner])
        if before_write is not None:
            before_write()
        create_run_directory(run_dir, fresh)
        return fit_trial_record(run, trial, pruner)
    finally:
        reporter.close()


def _record_stop(log: Any) -> None:
    """progress.json says the run was stopped cleanly (Ctrl-C, SIGTERM), its checkpoints kept: `interrupted`."""
    with contextlib.suppress(CnnkitError, OSError):  # a full disk: the stop itself must still go through
        log.record("interrupted")


def fit_test_record(run: BuiltRun) -> RunOutcome:
    """Fit `run` (on from last.ckpt when there is one), test its final and, when they differ, its best weights, and
    write predictions.npz and then result.json, atomically and last (config.json is written when training starts)."""
    from cnnkit.training.callbacks import RunInterrupted

    trainer, model, datamodule = run.trainer, run.model, run.datamodule
    files = RunFiles(run.run_dir)
    last = files.last_checkpoint
    resume_from = last if last.exists() else None
    log = run.epoch_log
    with stop_on_sigint(run.stopper):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
            # Testing the best checkpoint below restores the callbacks' state of that epoch: keep the whole log now.
            log = run.epoch_log.snapshot()
            if trainer.is_global_zero:
                log.record("testing")
            testing = time.perf_counter()
            final = trainer.test(model, datamodule=datamodule, verbose=False)[0]
            predictions, probabilities = model.test_predictions, model.test_probabilities
            best = final
            if best_logged_epoch(log.rows) != len(log.rows):  # the best weights are not the final ones: test them too
                # best.ckpt of this directory: a checkpoint's recorded path is stale once the run directory moved
                best_path = str(files.best_checkpoint) if run.best_checkpoint.best_model_path else str(last)
                best = trainer.test(model, datamodule=datamodule, ckpt_path=best_path, verbose=False)[0]
            test_seconds = time.perf_counter() - testing
        except (RunInterrupted, KeyboardInterrupt) as stop:
            if trainer.is_global_zero:
                _record_stop(log)
            if isinstance(stop, RunInterrupted):
                raise KeyboardInterrupt from None
            raise

    if not trainer.is_global_zero:
        return RunOutcome(run.run_dir, {})
    result = result_record(
        run.config, run.hyperparameters, run.summary, final, best, log, datamodule, trainer, test_seconds
    )
    if predictions is not None:
        write_predictions(files.predictions, datamodule, predictions, probabilities)
    log.record("finished", test_seconds)
    write_json_atomic(files.result, result)
    return RunOutcome(run.run_dir, result)


def fit_trial_record(run: BuiltRun, trial: SearchTrial, pruner: PruneOnValidation) -> RunOutcome:
    """Fit a search's trial (on from last.ckpt when there is one) until its budget ends or the search prunes it,
    then write its result.json: its state (complete, or pruned with the epoch), value and validation figures. It
    is never tested, and once recorded its checkpoints are removed (nothing resumes or tests a finished trial)."""
    from cnnkit.training.callbacks import RunInterrupted

    trainer = run.trainer
    files = RunFiles(run.run_dir)
    last = files.last_checkpoint
    log = run.epoch_log
    with stop_on_sigint(run.stopper):
        try:
            trainer.fit(run.model, datamodule=run.datamodule, ckpt_path=last if last.exists() else None)
        except (RunInterrupted, KeyboardInterrupt) as stop:
            if trainer.is_global_zero:
                _record_stop(log)
            if isinstance(stop, RunInterrupted):
                raise KeyboardInterrupt from None
            raise
    if not trainer.is_global_zero:
        return RunOutcome(run.run_dir, {})
    state = TrialState.COMPLETE if pruner.pruned_epoch is None else TrialState.PRUNED
    value = best_value([row.get(trial.metric) for row in log.rows], trial.metric)
    facts = {**trial.facts(), "state": str(state), "pruned_epoch": pruner.pruned_epoch, "value": value}
    result = trial_record(run.config, run.hyperparameters, run.summary, log, run.datamodule, trainer, facts)
    log.record("finished")
    write_json_atomic(files.result, result)
    shutil.rmtree(files.checkpoints, ignore_errors=True)
    return RunOutcome(run.run_dir, result)
