"""Draw README's learning-curve figure from the shipped full-length study: `python docs/readme_figure.py`.

Left: validation accuracy of the four MNIST runs (both nets, Adadelta as published and Adam).
Right: validation loss of CIFAR-10 net_1 with each optimizer, where Adam's rising curve shows overfitting.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "examples" / "results" / "assignment"
OUTPUT = ROOT / "docs" / "assignment-curves.png"
NET_NAMES = {"pooling_cnn": "net_1 (pooling)", "strided_cnn": "net_2 (strided)"}


def histories(dataset: str) -> list[tuple[str, dict[str, list[float]]]]:
    """(label, history) of every finished run of `dataset` in the shipped study."""
    runs = []
    for path in sorted(STUDY.glob(f"{dataset}-*/result.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        label = f"{NET_NAMES.get(result['architecture'], result['architecture'])}, {result['optimizer'].capitalize()}"
        runs.append((label, result["history"]))
    return runs


def main() -> int:
    fig = Figure(figsize=(9, 3.4), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    panels = (
        (left, "mnist", "val_accuracy", "MNIST: validation accuracy", "accuracy"),
        (right, "cifar10", "val_loss", "CIFAR-10, net_1: validation loss", "loss"),
    )
    for ax, dataset, metric, title, ylabel in panels:
        for label, history in histories(dataset):
            values = history[metric]
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=2.5, linewidth=1.3, label=label)
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    fig.savefig(OUTPUT)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
