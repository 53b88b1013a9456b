"""The training lever that is not a layer, a loss or a batch operation: early stopping."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import lightning as L


def early_stopping(patience: int) -> L.Callback:
    """Lightning's EarlyStopping on val_loss; a run resumed after it stopped stops again before training more."""
    from lightning.pytorch.callbacks import EarlyStopping

    class ResumableEarlyStopping(EarlyStopping):
        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if self.wait_count >= self.patience:  # restored from a checkpoint written after it had stopped
                trainer.should_stop = True

    return ResumableEarlyStopping(monitor="val_loss", mode="min", patience=patience)
