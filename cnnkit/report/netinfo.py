"""The report's view of the networks and datasets of a study: exact counts, layer kinds and reader metadata.

Counts come from config.json (`model.params`, `model.macs`, per-layer `macs`) where the run recorded them. Older
files lack multiply-adds: the network is then rebuilt from its registry entry for the recorded input shape and
counted with `cnnkit.nets.counting.count_network` (exact for any nested network). Only when that is impossible (plugin
not installed, no torch) does a flat layer table give the total, and only a flat table (no nested modules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnkit.registry import ReaderInfo
from cnnkit.report import analysis as an

# Layer kinds a reader recognizes, from the Keras-style type names of config.json's layer rows.
_COUNTABLE = ("Conv", "Dense", "Linear", "BatchNorm")
_KIND_WORDS = ("Conv", "Pool", "Dense", "Linear", "BatchNorm", "Dropout", "Flatten", "Residual", "Add")


NetKey = tuple[str, str, Any]  # (dataset, architecture, its `arch` table or None)


def net_key(run: an.Run | an.Group) -> NetKey:
    """What tells a study's networks apart: two configs of one architecture (two `arch` tables) are two networks."""
    return (run["dataset"], run["architecture"], run.setting("arch"))


@dataclass
class NetInfo:
    """One network of a study: a (dataset, architecture, arch table)."""

    dataset: str
    architecture: str
    layers: list[dict[str, Any]]
    params: int
    macs: int | None  # None when neither recorded nor countable
    kinds: list[str] = field(default_factory=list)
    arch: Any = None  # the run's own `arch` table (a FrozenTable), None for an architecture as registered

    @property
    def key(self) -> NetKey:
        return (self.dataset, self.architecture, self.arch)


def reader(registries: Any, kind: str, name: str) -> ReaderInfo:
    """The ReaderInfo of a registered dataset or architecture (empty when its plugin is not installed)."""
    registry = getattr(registries, kind, None) if registries is not None else None
    if registry is None or name not in registry:
        return ReaderInfo()
    return registry.entry(name).reader


def counted_macs(registries: Any, run: an.Run) -> int | None:
    """Multiply-adds per image from the registry's network for the run's recorded input shape (None if impossible)."""
    data = run.config.get("data") or {}
    shape, classes = data.get("image_shape"), data.get("num_classes")
    if registries is None or not shape or not classes or run["architecture"] not in registries.architectures:
        return None
    from cnnkit.nets.counting import architecture_macs

    height, width, channels = (int(d) for d in shape)
    cls = registries.architectures.get(run["architecture"])
    return architecture_macs(cls, (channels, height, width), int(classes), run.get("preset") or "keras")


def _row_macs(layer: dict[str, Any]) -> int | None:
    """Multiply-adds of an old flat layer row; None for a row with weights of a kind it cannot count (a block)."""
    kind = str(layer.get("type", ""))
    if layer.get("params") and not any(k in kind for k in _COUNTABLE):
        return None
    return an.layer_macs(layer)


def _kinds(layers: Sequence[dict[str, Any]]) -> list[str]:
    kinds = []
    for layer in layers:
        kind = str(layer.get("type", ""))
        if kind and kind not in kinds and any(w in kind for w in _KIND_WORDS):
            kinds.append(kind)
    return kinds


def net_infos(runs: Sequence[an.Run], registries: Any) -> list[NetInfo]:
    """One NetInfo per network (`net_key`), in order of first appearance."""
    seen: dict[NetKey, NetInfo] = {}
    for run in runs:
        key = net_key(run)
        model = run.config.get("model") or {}
        if key in seen or not model.get("layers"):
            continue
        rows = model["layers"]
        recorded = all("macs" in x for x in rows)
        layers = [{**x, "macs": int(x["macs"]) if recorded else _row_macs(x)} for x in rows]
        params = int(model.get("params") or sum(int(x.get("params", 0)) for x in layers))
        macs: int | None = int(model["macs"]) if model.get("macs") is not None else counted_macs(registries, run)
        if macs is None and all(x["macs"] is not None for x in layers):
            macs = sum(x["macs"] for x in layers)  # runs recorded before multiply-adds were counted whole
        seen[key] = NetInfo(key[0], key[1], layers, params, macs, _kinds(layers), key[2])
    return list(seen.values())
