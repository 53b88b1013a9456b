"""The lines a run shows, Keras-clear: its label, one line per epoch, one line of test figures.

`cnnkit.console.progress_bar.EpochProgress` writes them during training; nothing here imports torch or Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cnnkit.console.eta import format_duration
from cnnkit.states import Phase

EPOCH_COLUMNS = (
    ("train_loss", "loss"),
    ("train_accuracy", "accuracy"),
    ("val_loss", "val_loss"),
    ("val_accuracy", "val_accuracy"),
)
SHORT_LABELS = {"train_loss": "loss", "train_accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
TINY_LABELS = {"train_loss": "l", "train_accuracy": "a", "val_loss": "vl", "val_accuracy": "va"}
ELLIPSIS = "…"


class Clock(Protocol):
    """A study's clock: told the run's size and each epoch (its time and figures), it answers with the study's
    time left, or None when the epoch's line is shown elsewhere (a worker's clock: the command shows it)."""

    def run_started(self, train_images: int, epochs_done: int) -> str: ...

    def epoch_done(self, epochs_done: int, seconds: float, epochs: int, metrics: dict[str, float]) -> str | None: ...


class RunEvents(Protocol):
    """Where a run reports besides its own lines: within-epoch progress (for a live block another process draws)
    and the start and end of training and of each test pass (for timings)."""

    def batch(self, epoch: int, epochs: int, done: int, total: int, testing: bool = False) -> None: ...

    def phase(self, phase: Phase) -> None: ...


@dataclass(frozen=True)
class RunProgress:
    """How a run introduces itself: `label` (e.g. `[3/7] mnist · pooling_cnn · adam · seed 0`) and a study clock.

    `announced`: its header is already on screen (a study prints it before the run loads its data).
    `events`: told of batches and phases (`RunEvents`), whether or not lines are shown.
    """

    label: str = ""
    clock: Clock | None = None
    announced: bool = False
    events: RunEvents | None = None


def run_label(config: Any) -> str:
    """`mnist · pooling_cnn · adam · seed 0`, with the settings that differ from the defaults before the seed
    (`mnist · strided_cnn · adadelta · lr 0.1 · seed 0`) and a run's label first when it has one."""
    from cnnkit.training.config import describe_settings

    label = getattr(config, "label", None)
    parts = [f"{label}:" if label else "", config.dataset, config.architecture, config.optimizer]
    parts += [describe_settings(config), f"seed {config.seed}"]
    return " · ".join(part for part in parts if part).replace(": · ", ": ")


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def epoch_line(
    epoch: int, epochs: int, seconds: float, metrics: dict[str, float], eta: str = "", width: int | None = None
) -> str:
    """`Epoch 3/10 - 12s - loss: 0.1234 - accuracy: 0.9650 - val_loss: 0.0456 - val_accuracy: 0.9860 - study ETA 5m`.

    `eta`: the study's (`ETA 5m 10s`). Within `width` columns (a terminal's) the line keeps its words where they
    fit and shortens its labels where they do not (`epoch_forms`), never wrapping."""
    forms = epoch_forms(epoch, epochs, seconds, metrics, eta)
    return next((form for form in forms if width is None or len(form) <= width), forms[-1][: max(width or 0, 1)])


def epoch_forms(epoch: int, epochs: int, seconds: float, metrics: dict[str, float], eta: str = "") -> list[str]:
    """An epoch's line, from Keras' words to the shortest labels: `Epoch 3/10 - 12s - loss: 0.1234 - accuracy: ...`,
    `Epoch 3/10 - 12s - loss: 0.1234 - acc: ...`, `ep 3/10 12s loss 0.1234 acc ...`, `ep 3/10 12s l 0.1234 ...`."""
    took = format_duration(seconds) if seconds >= 10 else f"{seconds:.1f}s"
    shown = [name for name, _ in EPOCH_COLUMNS if name in metrics]
    labels = dict(EPOCH_COLUMNS)
    full = [f"Epoch {epoch}/{epochs}", took, *(f"{labels[name]}: {metrics[name]:.4f}" for name in shown)]
    short = [f"Epoch {epoch}/{epochs}", took, *(f"{SHORT_LABELS[name]}: {metrics[name]:.4f}" for name in shown)]
    compact = [f"ep {epoch}/{epochs}", took, *(f"{SHORT_LABELS[name]} {metrics[name]:.4f}" for name in shown)]
    tiny = [f"ep {epoch}/{epochs}", took, *(f"{TINY_LABELS[name]} {metrics[name]:.4f}" for name in shown)]
    ending = [eta] if eta else []
    return [
        " - ".join(full + ([f"study {eta}"] if eta else [])),
        " - ".join(short + ending),
        " ".join(compact + ending),
        " ".join(tiny + ending),
    ]


def shorten(text: str, width: int) -> str:
    """`text` within `width` characters: cut in the middle with an ellipsis, keeping its start and end
    (`cifar10-pooling_cnn-adam-aug_flip+crop-seed0` -> `cifar10-pool…crop-seed0`)."""
    if len(text) <= width:
        return text
    if width <= len(ELLIPSIS):
        return text[:width]
    head = (width - len(ELLIPSIS) + 1) // 2
    tail = width - len(ELLIPSIS) - head
    return f"{text[:head]}{ELLIPSIS}{text[len(text) - tail :] if tail else ''}"


def terminal_columns(stream: Any) -> int | None:
    """The columns of the terminal `stream` writes to; None for a file or a pipe (whose lines are never cut)."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None
    import shutil

    return shutil.get_terminal_size((100, 20)).columns


def test_line(result: dict[str, Any]) -> str:
    """One line of test figures: final weights, then the best epoch's (the same weights when it is the last)."""
    final = f"Test: accuracy {result['test_accuracy']:.4f}, loss {result['test_loss']:.4f} (final weights)"
    best, epochs = result["best_epoch"], len(result.get("history", {}).get("val_loss", [])) or result["epochs"]
    if epochs < result.get("planned_epochs", epochs):
        final = f"Stopped early after epoch {epochs}/{result['planned_epochs']}. {final}"
    if best == epochs:
        return f"{final}; best epoch {best}/{epochs} (lowest val_loss) is the last: same weights"
    return (
        f"{final}; best epoch {best}/{epochs} (lowest val_loss): "
        f"accuracy {result['best_test_accuracy']:.4f}, loss {result['best_test_loss']:.4f}"
    )


def trial_line(result: dict[str, Any]) -> str:
    """A search trial's closing line (it is never tested): `Trial 3 complete: val_loss 0.4123 (best of 4 epochs)`
    or `Trial 3 pruned after epoch 2/4: val_loss 0.6120`."""
    facts = result.get("trial") or {}
    metric, value = facts.get("metric", "val_loss"), facts.get("value")
    shown = f"{metric} {value:.4f}" if isinstance(value, (int, float)) else f"no finite {metric}"
    epochs = int(result.get("stopped_epoch") or 0)
    trial = f"Trial {facts.get('number')}"
    if facts.get("state") == "pruned":
        return f"{trial} pruned after epoch {facts.get('pruned_epoch')}/{result.get('planned_epochs')}: {shown}"
    return f"{trial} complete: {shown} (best of {plural(epochs, 'epoch')})"


def result_line(result: dict[str, Any]) -> str:
    """The closing line of a run (its test figures) or of a search trial (its state and value)."""
    return trial_line(result) if "trial" in result else test_line(result)


def progress_bar(done: int, total: int, width: int = 24) -> str:
    """`[=====>..........] 120/375`."""
    filled = width * done // total if total else 0
    return f"[{'=' * max(filled - 1, 0)}{'>' if filled else ''}{'.' * (width - filled)}] {done}/{total}"
