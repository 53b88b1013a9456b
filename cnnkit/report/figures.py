"""Report figures as deterministic inline SVG (matplotlib, Agg, no pyplot state) and PNG data URIs.

Each figure function takes plain data plus a `text` mapping of translated labels and returns an `<svg>`
element ready to inline into HTML: no XML prologue, no metadata, no namespace URLs, ids prefixed per figure.
Results are memoised in-process, so rendering HTML and PDF (or a report twice) draws each figure once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import pickle
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from cnnkit.report.analysis import History, MeanHistory
from cnnkit.results.stats import best_epoch

if TYPE_CHECKING:
    from matplotlib.colors import ListedColormap
    from matplotlib.typing import ColorType, RGBColorType

STYLE = {
    "svg.hashsalt": "cnnkit",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "legend.frameon": False,
}
TRAIN, VAL = "#1f77b4", "#d62728"
_F = TypeVar("_F", bound=Callable[..., str])
_CACHE: dict[bytes, str] = {}


def _memo(fn: _F) -> _F:
    """Memoise a figure function on the pickled bytes of its arguments."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        key = hashlib.sha256(pickle.dumps((fn.__qualname__, args, sorted(kwargs.items())))).digest()
        if key not in _CACHE:
            _CACHE[key] = fn(*args, **kwargs)
        return _CACHE[key]

    return wrapper  # type: ignore[return-value]


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    """A pyplot-free Agg figure and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


# fixed margins (fractions of the figure): much faster than tight_layout or bbox_inches="tight"
WIDE = {"left": 0.075, "right": 0.99, "bottom": 0.17, "top": 0.97, "wspace": 0.22}
WIDE_LEGEND = {**WIDE, "top": 0.88}  # room above the panels for the legend
LEGEND_FONT = 7


LEGEND_CHARS = 44  # a legend entry wraps at this many characters: a long configuration label stays in its panel


def _wrapped(labels: Sequence[str]) -> list[str]:
    return [textwrap.fill(label, LEGEND_CHARS, break_on_hyphens=False) for label in labels]


def _legend_above(axes: Sequence[Any]) -> None:
    """One legend for all panels, in a row above them, outside the axes: it never covers a curve."""
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].figure.legend(
        handles, _wrapped(labels), loc="lower center", bbox_to_anchor=(0.5, 0.9), ncol=len(labels),
        fontsize=LEGEND_FONT,
    )  # fmt: skip


def _draw(
    size: tuple[float, float],
    ncols: int,
    margins: dict[str, float],
    paint: Callable[[Sequence[Any]], None],
    prefix: str,
) -> str:
    """Create a figure under the report style, let `paint` fill its axes, return inline SVG."""
    import matplotlib

    # rc_context's stub takes only a dict keyed by its Literal of rc names; STYLE's keys are such names
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        fig, axes = _figure(*size, ncols)
        fig.subplots_adjust(**margins)
        paint(axes)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight", pad_inches=0.04)
    return clean_svg(buf.getvalue(), prefix)


_ID = re.compile(r'\s+id="([^"]+)"')
_BARE_G = re.compile(r'<g id="[^"]*">$')


def _unwrap_groups(svg: str) -> str:
    """Drop matplotlib's `<g id=...>` wrappers (one per artist); fewer nodes make PDF rendering faster."""
    out, stack = [], []
    for line in svg.split("\n"):
        stripped = line.strip()
        if stripped.startswith("<g") and not stripped.endswith("/>"):
            stack.append(bool(_BARE_G.match(stripped)))
            if stack[-1]:
                continue
        elif stripped == "</g>" and stack and stack.pop():
            continue
        out.append(stripped)
    return "\n".join(out)


def clean_svg(svg: str, prefix: str) -> str:
    """Make matplotlib's SVG document inlinable: drop prologue/metadata/namespaces, prefix ids, size by CSS."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")
    svg = re.sub(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"', r"\1", svg, count=1)
    svg = _unwrap_groups(svg)
    # 1/100 pt is plenty for coordinates (halves the markup to parse); text (tick labels) keeps every digit.
    svg = re.sub(
        r'(\s(?:d|x|y|x1|x2|y1|y2|width|height|transform|points)="[^"]*")',
        lambda m: re.sub(r"(\d\.\d\d)\d+", r"\1", m.group(1)),
        svg,
    )
    for ident in sorted(set(_ID.findall(svg)), key=len, reverse=True):
        used = f"#{ident}" in svg
        svg = svg.replace(f' id="{ident}"', f' id="{prefix}-{ident}"' if used else "")
        svg = svg.replace(f"#{ident}", f"#{prefix}-{ident}")
    return svg.replace("<svg ", '<svg role="img" ', 1)


def _curves(ax: Any, x: np.ndarray, series: Sequence[tuple[str, ColorType, np.ndarray, np.ndarray | None]]) -> None:
    """Plot (label, colour, mean, band-or-None) series by epoch; band is a (2, n) min/max envelope."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs are whole numbers
    ax.set_xlim(0.5, len(x) + 0.5)
    ax.ticklabel_format(axis="y", useOffset=False)  # no "1e-3 + 2.3" offsets on flat curves
    for label, colour, y, band in series:
        # Markers keep short runs (one or two epochs) visible; long ones get a plain line.
        ax.plot(x, y, color=colour, lw=1.4, label=label, marker="o" if len(x) <= 12 else None, ms=3)
        if band is not None:
            ax.fill_between(x, band[0], band[1], color=colour, alpha=0.15, lw=0)


@_memo
def learning_curves(curves: MeanHistory, text: Mapping[str, str], prefix: str) -> str:
    """Two panels, loss and accuracy (%), train vs validation by epoch (the mean over seeds, with their
    min-max band when there are several), the epoch of lowest mean validation loss marked."""
    history = curves.mean
    x = np.arange(1, history.epochs + 1)
    best = best_epoch(history.val_loss)
    several = max(curves.seeds_at) > 1

    def band(key: str, scale: float) -> np.ndarray | None:
        return np.array([getattr(curves.low, key), getattr(curves.high, key)]) * scale if several else None

    def paint(axes: Sequence[Any]) -> None:
        for ax, (kind, scale), ylabel in zip(
            axes, (("loss", 1.0), ("accuracy", 100.0)), (text["loss"], text["accuracy_pct"]), strict=True
        ):
            _curves(
                ax,
                x,
                [
                    (
                        text["train"],
                        TRAIN,
                        np.array(getattr(history, f"train_{kind}")) * scale,
                        band(f"train_{kind}", scale),
                    ),
                    (text["val"], VAL, np.array(getattr(history, f"val_{kind}")) * scale, band(f"val_{kind}", scale)),
                ],
            )
            ax.axvline(best, color="0.4", ls=":", lw=1, label=text["best_epoch"])
            ax.set_xlabel(text["epoch"])
            ax.set_ylabel(ylabel)
        _legend_above(axes)

    return _draw((7.0, 2.5), 2, WIDE_LEGEND, paint, prefix)


@_memo
def factor_effect(
    points: Sequence[tuple[float, float, float | None]],
    references: Sequence[tuple[float, float, str]],
    log: bool,
    text: Mapping[str, str],
    prefix: str,
) -> str:
    """Final test accuracy (%) against a numeric factor: the mean of each value with its 95 % interval as an
    error bar (a plain point for one seed), published figures as stars, a log axis where the values span decades."""

    def paint(axes: Sequence[Any]) -> None:
        ax = axes[0]
        xs = np.array([p[0] for p in points], dtype=float)
        ys = np.array([p[1] for p in points]) * 100
        low = np.array([p[1] - p[2] if p[2] is not None else p[1] for p in points]) * 100
        high = np.array([p[1] + p[2] if p[2] is not None else p[1] for p in points]) * 100
        ax.errorbar(xs, ys, yerr=[ys - low, high - ys], color=VAL, marker="o", ms=4, lw=1.4, capsize=3,
                    label=text["mean_ci"])  # fmt: skip
        for x, acc, label in references:
            ax.plot([x], [acc * 100], marker="*", ms=9, color="0.2", ls="none", label=label)
        if log:
            ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.minorticks_off()
        ax.set_xlabel(text["factor"])
        ax.set_ylabel(text["test_accuracy_pct"])
        _legend_above(axes)

    return _draw((4.6, 2.6), 1, {"left": 0.14, "right": 0.98, "bottom": 0.18, "top": 0.88}, paint, prefix)


@_memo
def optimizer_comparison(series: Sequence[tuple[str, Sequence[History]]], text: Mapping[str, str], prefix: str) -> str:
    """Validation accuracy and loss by epoch for several configurations (mean over seeds, min-max band)."""
    import matplotlib

    # tab10 is a ListedColormap of ten RGB tuples (the registry's stub returns a plain Colormap, without `colors`)
    tab10 = cast("ListedColormap", matplotlib.colormaps["tab10"])
    colours = cast("Sequence[RGBColorType]", tab10.colors)

    def paint(axes: Sequence[Any]) -> None:
        for ax, (key, scale, ylabel) in zip(
            axes, (("val_accuracy", 100.0, text["val_accuracy_pct"]), ("val_loss", 1.0, text["val_loss"])), strict=True
        ):
            for i, (label, histories) in enumerate(series):
                n = min(h.epochs for h in histories)
                ys = np.array([getattr(h, key)[:n] for h in histories]) * scale
                band = np.vstack([ys.min(0), ys.max(0)]) if len(histories) > 1 else None
                _curves(ax, np.arange(1, n + 1), [(label, colours[i % len(colours)], ys.mean(0), band)])
            ax.set_xlabel(text["epoch"])
            ax.set_ylabel(ylabel)
        _legend_above(axes)

    return _draw((7.0, 2.6), 2, WIDE_LEGEND, paint, prefix)


# The confusion matrix is drawn at the size the report gives it (46 % of an A4 column, 72 mm high at most), so that
# its type keeps its size on the page: the counts and the class names at CM_FONT, 7 pt at least.
CM_SIZE = (3.0, 2.8)  # inches
CM_FONT = 7.0  # pt


def _cm_margins(class_names: Sequence[str], rotated: bool) -> dict[str, float]:
    """Margins that leave room for the class names, so that the figure keeps CM_SIZE and its type its size (a
    name's width estimated at 0.62 em a character, DejaVu Sans)."""
    names = max(map(len, class_names), default=1) * 0.62 * CM_FONT / 72  # inches
    width, height = CM_SIZE
    left = (names + 0.32) / width
    bottom = ((names * 0.75 if rotated else 0.1) + 0.3) / height
    return {"left": left, "right": 0.99, "bottom": bottom, "top": 0.99}


@_memo
def confusion_heatmap(confusion: np.ndarray, class_names: Sequence[str], text: Mapping[str, str], prefix: str) -> str:
    """Confusion matrix as a heat map with counts (rows: true class, columns: predicted)."""
    n = len(class_names)

    def paint(axes: Sequence[Any]) -> None:
        ax = axes[0]
        ax.grid(False)
        ax.imshow(confusion, cmap="Blues", interpolation="nearest")
        top, rows = confusion.max() or 1, confusion.sum(axis=1, keepdims=True)
        # counts on the diagonal and on notable confusions only (>= 2 % of the true class): readable and light
        for (i, j), v in np.ndenumerate(confusion):
            if v and (i == j or v >= 0.02 * rows[i, 0]):
                colour = "white" if v > top / 2 else "0.2"
                ax.text(j, i, str(v), ha="center", va="center", fontsize=CM_FONT, color=colour)
        ax.set_xticks(range(n), class_names, rotation=45 if rotated else 0, ha="right" if rotated else "center")
        ax.set_yticks(range(n), class_names)
        ax.tick_params(length=0, labelsize=CM_FONT)
        ax.set_xlabel(text["predicted"])
        ax.set_ylabel(text["true"])

    rotated = max(map(len, class_names), default=1) > 2
    return _draw(CM_SIZE, 1, _cm_margins(class_names, rotated), paint, prefix)


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 HxW, HxWx1 or HxWx3 image as a base64 PNG data URI (deterministic: no metadata)."""
    from PIL import Image

    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass(frozen=True)
class Tile:
    """A gallery image (templates/partials/macros.j2, `gallery`): its data URI, true and predicted class names
    (several joined by "/"), and a note (a confidence) or ''."""

    src: str
    true: str
    pred: str
    note: str = ""


def misclassified_tiles(
    images: np.ndarray, true: Iterable[int], pred: Iterable[int], class_names: Sequence[str]
) -> list[Tile]:
    """Gallery tiles for misclassified test images."""
    return [
        Tile(png_data_uri(img), class_names[int(t)], class_names[int(p)])
        for img, t, p in zip(images, true, pred, strict=True)
    ]


@_memo
def reliability_diagram(
    series: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], text: Mapping[str, str], prefix: str
) -> str:
    """Two panels for configurations (label, mean confidence, accuracy, images per confidence bin): accuracy against
    confidence in the non-empty bins beside the diagonal of perfect calibration, and the share of test images in
    each bin (by its middle; the last point, at 1, is the bin of confidences of exactly 1)."""
    import matplotlib

    tab10 = cast("ListedColormap", matplotlib.colormaps["tab10"])
    colours = cast("Sequence[RGBColorType]", tab10.colors)

    def paint(axes: Sequence[Any]) -> None:
        left, right = axes
        left.plot([0, 100], [0, 100], color="0.6", ls="--", lw=1, label=text["perfect"])
        for i, (label, confidence, accuracy, count) in enumerate(series):
            colour = colours[i % len(colours)]
            count = np.asarray(count, dtype=float)
            used = count > 0
            left.plot(np.asarray(confidence)[used] * 100, np.asarray(accuracy)[used] * 100, color=colour, lw=1.2,
                      marker="o", ms=2.5, label=label)  # fmt: skip
            bins = len(count) - 1  # the last entry holds the confidences of exactly 1
            middles = np.append((np.arange(bins) + 0.5) / bins, 1.0) * 100
            right.plot(middles[used], count[used] / count.sum() * 100, color=colour, lw=1.2, marker="o", ms=2.5)
        left.set_xlim(0, 100)
        left.set_ylim(0, 100)
        left.set_xlabel(text["confidence_pct"])
        left.set_ylabel(text["accuracy_pct"])
        handles, labels = left.get_legend_handles_labels()
        left.legend(handles, _wrapped(labels), loc="upper left", fontsize=6.5)
        right.set_yscale("log")
        right.set_xlim(0, 101)
        right.set_xlabel(text["confidence_pct"])
        right.set_ylabel(text["share_pct"])

    return _draw((7.0, 2.6), 2, WIDE, paint, prefix)
