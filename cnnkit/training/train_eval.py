"""Clean training figures: after each epoch's validation, the model evaluated on a fixed sample of training images.

`train_loss` and `train_accuracy` are running means over the epoch's batches as they trained: in train mode
(dropout on), on transformed images, with the training loss (label smoothing included) and weights that changed
from batch to batch. For a regularized run their gap to the validation figures says little about overfitting.
`TrainingSetEvaluation` evaluates the network as validation does: eval mode, the images as the datamodule hands
them over (no per-batch transforms), no gradients, plain cross-entropy; on as many training images as the validation
split holds (all of them when the training split is the smaller), and logs `train_eval_loss` and
`train_eval_accuracy`, which metrics.csv and result.json's history then take.

The sample is drawn by a `torch.Generator` of its own from the run's seed, so it is the same images every epoch,
in every run of that seed and after a resume from last.ckpt (a function of the seed and the split sizes, not
stored state), and the training trajectory - the global RNGs, the data order, the dropout masks, batch-norm
statistics, the optimizer - is untouched. A datamodule without a validation split gets no clean figures (there is
no gap to measure, and a run without val_loss has no best epoch either), and neither does an epoch without
validation (`limit_val_batches=0`, as the throughput benchmarks set, or `check_val_every_n_epoch`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from cnnkit.results.reading import TRAIN_EVAL_KEYS

LOSS, ACCURACY = TRAIN_EVAL_KEYS
DEFAULT_BATCH = 256  # the evaluation batch of a datamodule that names none (InMemoryDataModule.eval_batch_size)


def training_sample(train_size: int, size: int, seed: int) -> torch.Tensor:
    """Sorted positions of `min(size, train_size)` distinct training images: a pure function of its arguments."""
    digest = hashlib.sha256(f"cnnkit clean training figures, seed {seed}".encode()).digest()
    # A stream of its own: not the epoch shuffles' seed * 1_000_003 + epoch, nor the augmentations'.
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
    return torch.randperm(train_size, generator=generator)[: min(size, train_size)].sort().values


class TrainingSetEvaluation(L.Callback):
    """Logs the clean training figures of each validated epoch (listed before `EpochLog`, which records them)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._sample: tuple[tuple[int, int, str], torch.Tensor] | None = None

    def sample(self, datamodule: Any, device: torch.device) -> torch.Tensor | None:
        """The sample's positions in the training split, on `device`; None without a validation split."""
        sizes = datamodule.split_sizes() if hasattr(datamodule, "split_sizes") else {}
        train, val = int(sizes.get("train", 0)), int(sizes.get("val", 0))
        if not train or not val:
            return None
        key = (train, val, str(device))
        if self._sample is None or self._sample[0] != key:
            self._sample = key, training_sample(train, val, self.seed).to(device)
        return self._sample[1]

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning 2 runs the epoch's validation before this hook.
        if not validates_this_epoch(trainer):
            return
        datamodule: Any = getattr(trainer, "datamodule", None)  # set by Lightning once fit is given one
        if datamodule is None or not hasattr(datamodule, "split"):
            return
        images, labels = datamodule.split("train")
        index = self.sample(datamodule, images.device)
        if index is None:
            return
        batch = max(getattr(datamodule, "eval_batch_size", DEFAULT_BATCH), getattr(datamodule, "batch_size", 0))
        loss, accuracy = evaluate(trainer, pl_module, images, labels, index, batch)
        for name, value in ((LOSS, loss), (ACCURACY, accuracy)):
            # Every process evaluates the whole sample (as the whole validation split): the mean over processes of
            # equal figures is that figure, and syncing keeps Lightning from warning under DDP.
            pl_module.log(name, value, on_step=False, on_epoch=True, batch_size=len(index), sync_dist=True)


def validates_this_epoch(trainer: L.Trainer) -> bool:
    """Whether the epoch now ending was validated (Lightning's limit_val_batches and check_val_every_n_epoch)."""
    if not trainer.limit_val_batches:
        return False
    every = trainer.check_val_every_n_epoch
    return every is None or (trainer.current_epoch + 1) % every == 0


@torch.no_grad()
def evaluate(
    trainer: L.Trainer,
    pl_module: L.LightningModule,
    images: torch.Tensor,
    labels: torch.Tensor,
    index: torch.Tensor,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy, accuracy) of `pl_module` in eval mode on `images[index]`, as device tensors.

    Batches go through the Trainer's own batch transfer (the datamodule's scaling to [0, 1]) and forward context
    (autocast under mixed precision); every module's train/eval mode is put back as it was."""
    modes = {module: module.training for module in pl_module.modules()}
    pl_module.eval()
    total = torch.zeros((), device=pl_module.device)
    correct = torch.zeros((), dtype=torch.long, device=pl_module.device)
    try:
        for start in range(0, len(index), batch_size):
            chosen = index[start : start + batch_size]
            x, y = trainer.strategy.batch_to_device((images[chosen], labels[chosen]))
            with trainer.precision_plugin.forward_context():
                logits = pl_module(x).float()
            total += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(dim=1) == y).sum()
    finally:
        for module, training in modes.items():
            module.training = training  # each module its own mode, as Lightning's loops restore them
    return total / len(index), correct.float() / len(index)
