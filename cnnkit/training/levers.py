"""The training levers that are not a layer or a batch operation: early stopping, and their record in config.json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnkit.nets.presets import WEIGHT_DECAY_MODE

if TYPE_CHECKING:
    import lightning as L

    from cnnkit.training.config import RunConfig
    from cnnkit.training.schedules import ScheduleSpec


def levers_record(config: RunConfig, schedule: ScheduleSpec | None) -> dict[str, Any]:
    """config.json's `levers`: what a run used against overfitting and how (all off by default)."""
    return {
        "augment": list(config.augment),
        "dropout": config.dropout,
        "weight_decay": config.weight_decay,
        "weight_decay_mode": WEIGHT_DECAY_MODE[config.preset],
        "lr_schedule": config.lr_schedule,
        "lr_schedule_settings": schedule.resolved(config.epochs) if schedule else None,
        "early_stopping": config.early_stopping,
    }


def early_stopping(patience: int) -> L.Callback:
    """Lightning's EarlyStopping on val_loss; a run resumed after it stopped stops again before training more."""
    from lightning.pytorch.callbacks import EarlyStopping

    class ResumableEarlyStopping(EarlyStopping):
        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if self.wait_count >= self.patience:  # restored from a checkpoint written after it had stopped
                trainer.should_stop = True

    return ResumableEarlyStopping(monitor="val_loss", mode="min", patience=patience)
