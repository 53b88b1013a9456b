"""The classifier base every architecture plugin subclasses.

A subclass only says how to build its `torch.nn.Module` for an input shape and class count; training,
validation and test steps, metrics, logging and optimizer wiring are shared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import Metric

from cnnkit.errors import UsageError
from cnnkit.nets.presets import DEFAULT_PRESET, OptimizerSpec, check_preset, decoupled_weight_decay, initialize

if TYPE_CHECKING:
    from cnnkit.training.schedules import ScheduleSpec

STAGES = ("train", "val", "test")


class SampleMean(Metric):
    """A per-sample mean over an epoch: running (sum, count) on the device, summed across processes at `compute`.

    One in-place add per state and step, no host sync, no argument checks: the cheapest update torchmetrics allows.
    """

    full_state_update = False
    higher_is_better = None
    # The states add_state registers (Metric's stubs type them as Module, from nn.Module.__getattr__).
    total: torch.Tensor
    count: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, total: torch.Tensor, count: int) -> None:
        """Add `total`, the sum over `count` samples (e.g. mean loss x batch size, or the number correct)."""
        self.total += total
        self.count += count

    def compute(self) -> torch.Tensor:
        return self.total / self.count


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
        *,
        dropout: float = 0.0,
        weight_decay: float = 0.0,
        label_smoothing: float = 0.0,
        schedule: ScheduleSpec | None = None,
        epochs: int = 1,
        arch: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if arch:
            raise UsageError(
                f"{type(self).__name__} is not an architecture of the convnet family, so it takes no arch table; "
                "use convnet or one of its presets (see 'cnnkit list architectures')"
            )
        # tuple(): whatever sequence the caller passed, it is (channels, height, width)
        self.input_shape = cast("tuple[int, int, int]", tuple(input_shape))
        self.num_classes = num_classes
        self.preset, self.optimizer_spec, self.lr = check_preset(preset), optimizer, lr
        self.dropout, self.weight_decay, self.schedule, self.epochs = dropout, weight_decay, schedule, epochs
        self.label_smoothing = label_smoothing
        self.network = self.build_network(self.input_shape, num_classes, preset)
        if dropout and not any(isinstance(m, torch.nn.Dropout) for m in self.network.modules()):
            raise UsageError(
                f"{type(self).__name__} has no dropout layers, so --dropout cannot apply to it; "
                "leave --dropout out or use a network that calls dropout_layers()"
            )
        initialize(self.network, preset)
        # Metric objects accumulate on the device and are reduced once per epoch (no per-step host sync);
        # under DDP `compute` sums the states of all processes, so the epoch figures cover the whole split.
        for stage in STAGES:
            setattr(self, f"{stage}_loss_mean", SampleMean())
            setattr(self, f"{stage}_accuracy_metric", SampleMean())
        self.channels_last = False
        self.test_predictions: torch.Tensor | None = None
        self.test_probabilities: torch.Tensor | None = None  # softmax of the test logits, float32, test-set order
        self._test_batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def build_network(self, input_shape: tuple[int, int, int], num_classes: int, preset: str) -> torch.nn.Module:
        """Return the network for (channels, height, width) inputs and `num_classes` logits."""
        raise NotImplementedError

    def dropout_layers(self) -> list[torch.nn.Module]:
        """`[Dropout(p)]` for the run's `--dropout p`, `[]` without it: splice it where the network takes dropout."""
        return [torch.nn.Dropout(self.dropout)] if self.dropout else []

    def setup(self, stage: str) -> None:
        # Deterministic mode (what the runner asks for on CPU) also fills every new tensor with NaN to expose reads
        # of uninitialised memory: a debugging aid that adds nothing to determinism and cost ~5% of a CPU training
        # step of these nets (about 50 fills per step). The deterministic algorithms themselves stay on.
        if torch.are_deterministic_algorithms_enabled():
            torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]

    def set_channels_last(self, enabled: bool = True) -> None:
        """Keep weights and inputs in channels_last (NHWC) memory format: faster convolutions on recent GPUs."""
        self.channels_last = enabled
        self.network.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.network(images)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        count = labels.shape[0]
        if stage == "train" and self.label_smoothing:
            # Keras' CategoricalCrossentropy(label_smoothing=s): targets (1 - s) * one_hot + s / classes, which is
            # what torch's label_smoothing computes. Validation and test losses stay plain cross-entropy, so that
            # they compare across settings.
            loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        else:
            loss = F.cross_entropy(logits, labels)
        predicted = logits.detach().argmax(dim=1)
        loss_mean: SampleMean = getattr(self, f"{stage}_loss_mean")
        accuracy: SampleMean = getattr(self, f"{stage}_accuracy_metric")
        loss_mean.update(loss.detach() * count, count)
        accuracy.update((predicted == labels).sum(), count)
        if batch_idx == 0:
            # Registering the metric objects once per epoch is enough: Lightning computes (and, under DDP, syncs)
            # and resets them at the epoch's end from their own accumulated state. Calling self.log every step
            # cost ~1 ms of Python per call for nothing (epoch-level values only).
            show = stage != "test"
            for name, metric in (("loss", loss_mean), ("accuracy", accuracy)):
                self.log(f"{stage}_{name}", metric, on_step=False, on_epoch=True, prog_bar=show, batch_size=count)
        if stage == "test":
            self._test_batches.append((predicted, torch.softmax(logits.detach().float(), dim=1)))
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, batch_idx, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, batch_idx, "test")

    def on_test_epoch_start(self) -> None:
        self._test_batches = []

    def on_test_epoch_end(self) -> None:
        batches = self._test_batches
        self.test_predictions = torch.cat([p for p, _ in batches]).cpu() if batches else None
        self.test_probabilities = torch.cat([q for _, q in batches]).cpu() if batches else None
        self._test_batches = []

    def optimizer_hyperparameters(self) -> dict[str, Any]:
        """Every hyperparameter the optimizer is built with (config.json's `optimizer_hparams`)."""
        if self.optimizer_spec is None:
            raise RuntimeError("no optimizer given to the classifier")
        return self.optimizer_spec.hyperparameters(self.preset, self.lr, self.weight_decay)

    def configure_optimizers(self) -> Any:
        if self.optimizer_spec is None:
            raise RuntimeError("no optimizer given to the classifier")
        optimizer = self.optimizer_spec.build(self.parameters(), self.preset, self.lr, self.weight_decay)
        if self.schedule is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.schedule.build(optimizer, self.epochs)}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # The keras preset decays weights as Keras' optimizers do: w <- w - lr * wd * w before each update,
        # apart from the gradient (the torch preset passes weight_decay to the optimizer: an L2 term in the gradient).
        if self.weight_decay and decoupled_weight_decay(self.preset):
            with torch.no_grad():
                for group in optimizer.param_groups:
                    factor = 1.0 - group["lr"] * self.weight_decay
                    for parameter in group["params"]:
                        if parameter.grad is not None:
                            parameter.mul_(factor)
