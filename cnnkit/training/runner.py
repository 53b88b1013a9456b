"""One training run: registry lookups, the Lightning Trainer, and the run directory of the results contract."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.console.progress import RunProgress, run_label
from cnnkit.console.terminal import quiet_lightning, stop_on_sigint
from cnnkit.errors import RunError, UsageError
from cnnkit.plugins import Registries, get_registries
from cnnkit.results.files import RunFiles
from cnnkit.results.reading import finished_result, stored_settings
from cnnkit.results.records import best_logged_epoch, config_record, result_record, write_predictions
from cnnkit.storage.atomic import write_json_atomic
from cnnkit.storage.claims import FinishedMeanwhile, RunClaim, refuse_if_locked
from cnnkit.storage.damage import clear_for_fresh_start
from cnnkit.storage.locks import LOCK_NAME
from cnnkit.training.config import RunConfig
from cnnkit.training.levers import early_stopping
from cnnkit.training.loggers import experiment_logger

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
) -> RunOutcome:
    """Train, evaluate and record one run; a finished run is skipped, an unfinished one resumed.

    Everything that can be refused (names, numbers, data files, devices) is checked before anything is written;
    `before_write` is called just before the run directory is first touched. `progress` labels the run on the
    console (and carries a study's clock).
    """
    registries = registries or get_registries()
    config = config.checked(registries)
    run_dir = run_directory(out, study, config)
    check_run_directory(run_dir, config, fresh)
    helper_rank = _launched_by_lightning()
    if not helper_rank:
        refuse_if_locked(run_dir)  # RunLocked: the caller skips it
    result = None if fresh else finished_result(run_dir)
    if result is not None:
        return RunOutcome(run_dir, result, skipped=True)
    progress = progress or RunProgress(run_label(config))
    with quiet_lightning(options.quiet or not options.verbose), RunClaim(run_dir, fresh, lock=not helper_rank) as claim:
        try:
            return _train(config, options, run_dir, study, registries, fresh, claim.before(before_write), progress)
        except FinishedMeanwhile as finished:
            return RunOutcome(run_dir, finished.result, skipped=True)


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
            "pass --fresh to start over or --out to write elsewhere"
        )


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


def trainer_kwargs(config: RunConfig, options: TrainerOptions, run_dir: Path) -> dict[str, Any]:
    """The run's `L.Trainer` settings except its callbacks (benchmarks/throughput.py builds its Trainer from these)."""
    import torch

    from cnnkit.training.resume import AtomicCheckpointIO

    on_cpu = options.accelerator == "cpu" or (options.accelerator == "auto" and not torch.cuda.is_available())
    deterministic = on_cpu  # bit-identical reruns on CPU; on GPUs the fast non-deterministic kernels
    return {
        "max_epochs": config.epochs,
        "accelerator": options.accelerator,
        "devices": _devices(options.devices),
        "strategy": options.strategy,
        "precision": options.precision,
        "num_nodes": options.num_nodes,
        "logger": experiment_logger(options.logger, run_dir),
        "plugins": [AtomicCheckpointIO()],
        "enable_progress_bar": not options.quiet,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "deterministic": deterministic,
        "default_root_dir": run_dir,
        "benchmark": not deterministic,
    }


def checkpoint_callbacks(directory: Path) -> tuple[Any, Any]:
    """best.ckpt (lowest val_loss) and last.ckpt (after every epoch), each overwritten in place.

    Two callbacks, because Lightning 2.6's `save_last` only writes when a top-k checkpoint was saved in the same
    step: with one callback last.ckpt would stop at the best epoch, and a resumed run would start over from there.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    best = ModelCheckpoint(
        dirpath=directory, filename="best", monitor="val_loss", mode="min", save_top_k=1, enable_version_counter=False
    )
    last = ModelCheckpoint(dirpath=directory, filename="last", save_top_k=1, enable_version_counter=False)
    return best, last


def progress_callbacks(options: TrainerOptions, progress: RunProgress | None = None) -> list[Any]:
    """What a run shows: a line per epoch, and on a terminal a bar redrawn at most 5 times a second; and what it
    tells `progress.events` (a job's live line and timings)."""
    from cnnkit.console.progress_bar import EpochProgress
    from cnnkit.training.events import ReportEvents

    events = [ReportEvents(progress.events)] if progress is not None and progress.events is not None else []
    return events + ([] if options.quiet else [EpochProgress(progress, interval=0.2)])


def _train(
    config: RunConfig,
    options: TrainerOptions,
    run_dir: Path,
    study: str,
    registries: Registries,
    fresh: bool,
    before_write: Callable[[], None] | None,
    progress: RunProgress,
) -> RunOutcome:
    import lightning as L
    import torch

    from cnnkit.nets.summary import summarize
    from cnnkit.training.callbacks import EpochLog, OnTrainStart, RunInterrupted, StopOnRequest
    from cnnkit.training.resume import RngState

    L.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = registries.datasets.get(config.dataset)(
        data_dir=options.data_dir,
        batch_size=config.batch_size,
        val_split=config.val_split,
        subset=config.subset,
        seed=config.seed,
    )
    datamodule.load_arrays()  # reads and validates the files now, before anything is written
    datamodule.augment_training_set([registries.augmentations.get(name) for name in config.augment])
    optimizer = registries.optimizers.get(config.optimizer)
    schedule = registries.schedules.get(config.lr_schedule) if config.lr_schedule else None
    model = registries.architectures.get(config.architecture)(
        datamodule.input_shape(),
        datamodule.num_classes(),
        optimizer,
        config.preset,
        config.lr,
        schedule=schedule,
        epochs=config.epochs,
        **config.network_settings(),
    )
    hyperparameters = model.optimizer_hyperparameters()
    summary = summarize(model.network, datamodule.input_shape())
    if options.channels_last:
        model.set_channels_last(True)
    if options.compile:
        model.network.compile()  # in place: checkpoints keep the plain parameter names (no `_orig_mod.`)

    files = RunFiles(run_dir)
    checkpoint, last_checkpoint = checkpoint_callbacks(files.checkpoints)
    epoch_log = EpochLog(files.metrics, learning_rate=schedule is not None)
    stopper = StopOnRequest()

    def write_config(trainer: L.Trainer) -> None:
        record = config_record(study, config, hyperparameters, datamodule, summary, trainer, options, deterministic)
        record["levers"] = config.levers_record(registries)
        write_json_atomic(files.config, record)

    callbacks: list[L.Callback] = [
        checkpoint,
        last_checkpoint,
        epoch_log,
        stopper,
        RngState(),
        OnTrainStart(write_config),
    ]
    if config.early_stopping:
        callbacks.append(early_stopping(config.early_stopping))
    callbacks += progress_callbacks(options, progress)
    if options.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--accelerator {options.accelerator} was asked for, but no usable GPU is visible to PyTorch here; "
            "use --accelerator cpu (or auto)"
        )
    settings = trainer_kwargs(config, options, run_dir)
    deterministic = settings["deterministic"]
    try:
        trainer = L.Trainer(callbacks=callbacks, **settings)
    except Exception as exc:  # Lightning's MisconfigurationException and friends
        raise UsageError(f"cannot set up training: {exc}") from exc
    if before_write is not None:
        before_write()
    create_run_directory(run_dir, fresh)

    last = files.last_checkpoint
    resume_from = last if last.exists() else None
    with stop_on_sigint(stopper):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
            # Testing the best checkpoint below restores the callbacks' state of that epoch: keep the whole log now.
            log = epoch_log.snapshot()
            final = trainer.test(model, datamodule=datamodule, verbose=False)[0]
            predictions, probabilities = model.test_predictions, model.test_probabilities
            best = final
            if best_logged_epoch(log.rows) != len(log.rows):  # the best weights are not the final ones: test them too
                # best.ckpt of this directory: a checkpoint's recorded path is stale once the run directory moved
                best_path = str(files.best_checkpoint) if checkpoint.best_model_path else str(last)
                best = trainer.test(model, datamodule=datamodule, ckpt_path=best_path, verbose=False)[0]
        except RunInterrupted:
            raise KeyboardInterrupt from None

    if not trainer.is_global_zero:
        return RunOutcome(run_dir, {})
    result = result_record(config, hyperparameters, summary, final, best, log, datamodule, trainer)
    if predictions is not None:
        write_predictions(files.predictions, datamodule, predictions, probabilities)
    write_json_atomic(files.result, result)
    return RunOutcome(run_dir, result)


def _devices(value: str) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value
