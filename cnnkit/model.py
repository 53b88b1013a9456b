"""The classifier base every architecture plugin subclasses.

A subclass only says how to build its `torch.nn.Module` for an input shape and class count; training,
validation and test steps, metrics, logging and optimizer wiring are shared here.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from cnnkit.presets import DEFAULT_PRESET, OptimizerSpec, check_preset, initialize

STAGES = ("train", "val", "test")


class ImageClassifier(L.LightningModule):
    """Softmax classifier over images; the network returns logits, the loss is cross-entropy on them.

    Cross-entropy on logits with class indices is exactly softmax + categorical cross-entropy on one-hot
    labels (the assignment's loss), computed in one numerically stable step.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        optimizer: OptimizerSpec | None = None,
        preset: str = DEFAULT_PRESET,
        lr: float | None = None,
    ) -> None:
        super().__init__()
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.preset, self.optimizer_spec, self.lr = check_preset(preset), optimizer, lr
        self.network = self.build_network(self.input_shape, num_classes, preset)
        initialize(self.network, preset)
        # Metric objects accumulate on the device and are reduced once per epoch (no per-step host sync).
        for stage in STAGES:
            setattr(self, f"{stage}_loss_mean", MeanMetric(nan_strategy="disable"))
            setattr(
                self,
                f"{stage}_accuracy_metric",
                MulticlassAccuracy(num_classes, average="micro", validate_args=False),
            )
        self.test_predictions: torch.Tensor | None = None
        self._test_batches: list[torch.Tensor] = []

    def build_network(
        self, input_shape: tuple[int, int, int], num_classes: int, preset: str
    ) -> torch.nn.Module:
        """Return the network for (channels, height, width) inputs and `num_classes` logits."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        loss_mean: MeanMetric = getattr(self, f"{stage}_loss_mean")
        accuracy: MulticlassAccuracy = getattr(self, f"{stage}_accuracy_metric")
        loss_mean.update(loss.detach(), weight=labels.shape[0])
        accuracy.update(logits.detach(), labels)
        show = stage != "test"
        self.log(f"{stage}_loss", loss_mean, on_step=False, on_epoch=True, prog_bar=show)
        self.log(f"{stage}_accuracy", accuracy, on_step=False, on_epoch=True, prog_bar=show)
        if stage == "test":
            self._test_batches.append(logits.argmax(dim=1))
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self._test_batches = []

    def on_test_epoch_end(self) -> None:
        self.test_predictions = torch.cat(self._test_batches).cpu() if self._test_batches else None
        self._test_batches = []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_spec is None:
            raise RuntimeError("no optimizer given to the classifier")
        return self.optimizer_spec.build(self.parameters(), self.preset, self.lr)
