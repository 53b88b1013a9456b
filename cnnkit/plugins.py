"""The plugin manager: loads the `cnnkit` entry-point group and fills the registries from the hooks."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from cnnkit import hookspecs
from cnnkit.errors import PluginError
from cnnkit.registry import Entry, ReaderInfo, Registry

ENTRY_POINT_GROUP = hookspecs.PROJECT
BUILTIN_DISTRIBUTION = "cnnkit"
AUTOLOAD_ENV = "CNNKIT_DISABLE_PLUGIN_AUTOLOAD"

# registry attribute -> (kind shown to users, hook name)
HOOKS: dict[str, tuple[str, str]] = {
    "datasets": ("dataset", "cnnkit_register_datasets"),
    "architectures": ("architecture", "cnnkit_register_architectures"),
    "optimizers": ("optimizer", "cnnkit_register_optimizers"),
    "studies": ("study", "cnnkit_register_studies"),
    "augmentations": ("augmentation", "cnnkit_register_augmentations"),
    "schedules": ("schedule", "cnnkit_register_schedules"),
}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    loaded: bool
    error: str = ""


@dataclass
class Registries:
    datasets: Registry[Any] = field(default_factory=lambda: Registry("dataset"))
    architectures: Registry[Any] = field(default_factory=lambda: Registry("architecture"))
    optimizers: Registry[Any] = field(default_factory=lambda: Registry("optimizer"))
    studies: Registry[Any] = field(default_factory=lambda: Registry("study"))
    augmentations: Registry[Any] = field(default_factory=lambda: Registry("augmentation"))
    schedules: Registry[Any] = field(default_factory=lambda: Registry("schedule"))
    plugins: list[PluginInfo] = field(default_factory=list)

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if not p.loaded]


def autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _load_entry_points(pm: pluggy.PluginManager, infos: list[PluginInfo], origin: dict[str, tuple[str, str]]) -> None:
    only_builtin = autoload_disabled()
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else ""
        if only_builtin and dist != BUILTIN_DISTRIBUTION:
            continue
        name = f"{dist}:{ep.name}"
        if pm.has_plugin(name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=name)
        except Exception as exc:  # a broken plugin must not take the others down
            infos.append(PluginInfo(name, dist, version, loaded=False, error=f"{type(exc).__name__}: {exc}"))
            continue
        origin[name] = (dist, version)
        infos.append(PluginInfo(name, dist, version, loaded=True))


def create_plugin_manager(extra_plugins: Iterable[object] = ()) -> tuple[pluggy.PluginManager, Registries]:
    """A manager with the entry-point plugins (and `extra_plugins`, e.g. one registered by a test) loaded."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registries = Registries()
    origin: dict[str, tuple[str, str]] = {}
    _load_entry_points(pm, registries.plugins, origin)
    for plugin in extra_plugins:
        name = pm.register(plugin) or repr(plugin)
        registries.plugins.append(PluginInfo(name, "", "", loaded=True))
    pm.check_pending()
    _fill(pm, registries, origin)
    return pm, registries


def _fill(pm: pluggy.PluginManager, registries: Registries, origin: dict[str, tuple[str, str]]) -> None:
    for attr, (kind, hook_name) in HOOKS.items():
        registry: Registry[Any] = getattr(registries, attr)
        # Calling each implementation ourselves tells us which plugin registered what.
        for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
            plugin = impl.plugin_name
            dist, version = origin.get(plugin, ("", ""))

            def register(
                name: str,
                target: Any,
                *,
                aliases: Iterable[str] = (),
                description: str = "",
                reader: ReaderInfo | None = None,
                _plugin: str = plugin,
                _dist: str = dist,
                _version: str = version,
                _registry: Registry[Any] = registry,
                _kind: str = kind,
            ) -> None:
                if reader is not None and not isinstance(reader, ReaderInfo):
                    raise PluginError(f"plugin '{_plugin}' registered {_kind} '{name}' with reader= not a ReaderInfo")
                info = reader or ReaderInfo()
                _registry.add(Entry(_kind, name, target, _plugin, _dist, _version, tuple(aliases), description, info))

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin '{plugin}' failed in {hook_name}: {type(exc).__name__}: {exc}") from exc


_default: Registries | None = None


def get_registries() -> Registries:
    """The registries of the installed plugins, built once per process."""
    global _default
    if _default is None:
        _default = create_plugin_manager()[1]
    return _default


def set_registries(registries: Registries | None) -> None:
    """Replace (or with None, reset) the process-wide registries; used by tests that add a plugin."""
    global _default
    _default = registries
