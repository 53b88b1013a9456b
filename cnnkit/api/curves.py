"""Learning curves of a study as one matplotlib figure: a row per dataset, loss and accuracy side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnnkit.api.tables import configuration, varying

PANELS = ("loss", "accuracy")


def _mean_curve(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds per epoch (runs stopped early contribute to their epochs only)."""
    length = max(len(curve) for curve in curves)
    grid = np.full((len(curves), length), np.nan)
    for row, curve in enumerate(curves):
        grid[row, : len(curve)] = curve
    return np.nanmean(grid, axis=0), np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)


def plot_curves(runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Sequence[float]]]], title: str = "") -> Any:
    """(settings, history) per run -> a Figure: validation solid, training dashed, the mean over seeds with its
    range shaded; each configuration labelled by the settings that tell it from the others of its dataset."""
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(str(settings["dataset"]) for settings, _ in runs))
    figure, axes = plt.subplots(len(datasets), len(PANELS), figsize=(11, 3.6 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        groups: dict[tuple[Any, ...], list[tuple[Mapping[str, Any], Mapping[str, Sequence[float]]]]] = {}
        for settings, history in runs:
            if settings["dataset"] == dataset:
                groups.setdefault(configuration(settings), []).append((settings, history))
        firsts = [members[0][0] for members in groups.values()]
        shown = [n for n in varying(firsts, firsts[0]) if n != "seed"] or ["architecture", "optimizer"]
        for index, members in enumerate(groups.values()):
            label = " · ".join(str(members[0][0][name]) for name in shown)
            color = f"C{index % 10}"
            for column, panel in enumerate(PANELS):
                ax = axes[row][column]
                for split, style in (("val", "-"), ("train", "--")):
                    mean, low, high = _mean_curve([history[f"{split}_{panel}"] for _, history in members])
                    epochs = np.arange(1, len(mean) + 1)
                    marker = "o" if len(mean) == 1 else None  # a single epoch: a point, not an invisible line
                    ax.plot(epochs, mean, style, color=color, marker=marker, label=label if split == "val" else None)
                    if len(members) > 1:
                        ax.fill_between(epochs, low, high, color=color, alpha=0.15, linewidth=0)
                ax.set_title(f"{dataset}: {panel} (solid: validation, dashed: training)", fontsize="medium")
                ax.set_xlabel("epoch")
                ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    plt.close(figure)  # handed back, not shown twice: a notebook displays the returned figure
    return figure
