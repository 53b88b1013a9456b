"""One run put together from its settings: data module, model, callbacks and Lightning Trainer, nothing yet on disk.

`cnnkit run` and the benchmarks build their runs here, so that a benchmark measures the callbacks a real run gets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.console.progress import RunProgress
from cnnkit.errors import UsageError
from cnnkit.plugins import Registries
from cnnkit.results.files import RunFiles
from cnnkit.results.records import config_record
from cnnkit.storage.atomic import write_json_atomic
from cnnkit.training.config import RunConfig
from cnnkit.training.levers import early_stopping
from cnnkit.training.loggers import experiment_logger

if TYPE_CHECKING:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from cnnkit.nets.summary import ModelSummary
    from cnnkit.training.callbacks import EpochLog, StopOnRequest
    from cnnkit.training.runner import TrainerOptions
    from cnnkit.training.schedules import ScheduleSpec


@dataclass(frozen=True)
class BuiltRun:
    """A run ready to fit, and what fitting, testing and recording it need later."""

    config: RunConfig
    run_dir: Path
    datamodule: Any  # the dataset plugin's LightningDataModule, its files already read and checked
    model: Any  # the architecture plugin's LightningModule
    trainer: L.Trainer
    hyperparameters: dict[str, Any]  # every setting the optimizer is built with
    summary: ModelSummary
    schedule: ScheduleSpec | None
    epoch_log: EpochLog
    best_checkpoint: ModelCheckpoint
    stopper: StopOnRequest  # the SIGINT handler's way to stop at the next batch

    @property
    def files(self) -> RunFiles:
        return RunFiles(self.run_dir)


def build_run(
    config: RunConfig,
    options: TrainerOptions,
    run_dir: Path,
    registries: Registries,
    progress: RunProgress | None,
    study: str,
    *,
    extra_callbacks: Sequence[L.Callback] = (),
    trainer_settings: Mapping[str, Any] | None = None,
) -> BuiltRun:
    """The run of `config` (already checked) training into `run_dir`, seeded, its data read; nothing written.

    Whatever can be refused (data files, --subset, architecture settings, devices, Trainer settings) is refused
    here, before the run directory is touched; config.json is written by a callback once training starts.
    `extra_callbacks` and `trainer_settings` (replacing the run's own) are for benchmarks that time a run.
    """
    import lightning as L

    from cnnkit.nets.summary import summarize
    from cnnkit.training.callbacks import EpochLog, OnTrainStart, StopOnRequest
    from cnnkit.training.resume import RngState
    from cnnkit.training.train_eval import TrainingSetEvaluation

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
        **config.network_settings(),  # the levers a network applies (dropout, weight decay, label smoothing)
    )
    hyperparameters = model.optimizer_hyperparameters()
    early_stop = [early_stopping(config.early_stopping)] if config.early_stopping else []
    summary = summarize(model.network, datamodule.input_shape())
    if options.channels_last:
        model.set_channels_last(True)
    if options.compile:
        model.network.compile()  # in place: checkpoints keep the plain parameter names (no `_orig_mod.`)
    deterministic = _deterministic(options)

    def write_config(trainer: L.Trainer) -> None:
        record = config_record(study, config, hyperparameters, datamodule, summary, trainer, options, deterministic)
        record["levers"] = config.levers_record(registries)
        write_json_atomic(files.config, record)

    files = RunFiles(run_dir)
    best_checkpoint, last_checkpoint = checkpoint_callbacks(files.checkpoints)
    epoch_log = EpochLog(files.metrics, learning_rate=schedule is not None)
    stopper = StopOnRequest()
    callbacks: list[L.Callback] = [
        best_checkpoint,
        last_checkpoint,
        TrainingSetEvaluation(config.seed),  # before epoch_log, which records the figures it logs
        epoch_log,
        stopper,
        RngState(),
        OnTrainStart(write_config),
        *early_stop,
        *progress_callbacks(options, progress),
        *extra_callbacks,
    ]
    trainer = _trainer(config, options, run_dir, callbacks, trainer_settings or {})
    return BuiltRun(
        config=config,
        run_dir=run_dir,
        datamodule=datamodule,
        model=model,
        trainer=trainer,
        hyperparameters=hyperparameters,
        summary=summary,
        schedule=schedule,
        epoch_log=epoch_log,
        best_checkpoint=best_checkpoint,
        stopper=stopper,
    )


def _trainer(
    config: RunConfig,
    options: TrainerOptions,
    run_dir: Path,
    callbacks: list[L.Callback],
    overrides: Mapping[str, Any],
) -> L.Trainer:
    """The run's Trainer; a device or setting that Lightning refuses is a UsageError."""
    import lightning as L
    import torch

    if options.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--accelerator {options.accelerator} was asked for, but no usable GPU is visible to PyTorch here; "
            "use --accelerator cpu (or auto)"
        )
    settings = {**trainer_kwargs(config, options, run_dir), **overrides}
    try:
        return L.Trainer(callbacks=callbacks, **settings)
    except Exception as exc:  # Lightning's MisconfigurationException and friends
        raise UsageError(f"cannot set up training: {exc}") from exc


def _deterministic(options: TrainerOptions) -> bool:
    """Bit-identical reruns on CPU; on GPUs the fast non-deterministic kernels."""
    import torch

    return options.accelerator == "cpu" or (options.accelerator == "auto" and not torch.cuda.is_available())


def trainer_kwargs(config: RunConfig, options: TrainerOptions, run_dir: Path) -> dict[str, Any]:
    """The run's `L.Trainer` settings except its callbacks."""
    from cnnkit.training.resume import AtomicCheckpointIO

    on_cpu = _deterministic(options)
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
        "deterministic": on_cpu,
        "default_root_dir": run_dir,
        "benchmark": not on_cpu,
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


def _devices(value: str) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value
