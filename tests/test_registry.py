"""Plugin manager and registries: built-ins through entry points, duplicates, unknown names, broken plugins."""

from __future__ import annotations

import importlib.metadata
import types

import pytest

from cnnkit import hookimpl
from cnnkit.errors import PluginError, UsageError
from cnnkit.plugins import create_plugin_manager
from cnnkit.registry import Entry, Registry

CONTRACT = {
    "datasets": {"mnist", "cifar10"},
    "architectures": {"pooling_cnn", "strided_cnn"},
    "optimizers": {"adam", "adagrad", "adadelta", "sgd", "rmsprop"},
    "studies": {"assignment"},
}


def plugin_module(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def test_builtins_come_through_the_cnnkit_entry_point_group() -> None:
    _, registries = create_plugin_manager()
    for kind, names in CONTRACT.items():
        entries = {entry.name: entry for entry in getattr(registries, kind)}
        assert names <= set(entries)
        assert {entries[name].distribution for name in names} == {"cnnkit"}
    assert registries.architectures.canonical("net_1") == "pooling_cnn"
    assert registries.architectures.canonical("net_2") == "strided_cnn"
    group = importlib.metadata.entry_points(group="cnnkit")
    assert {ep.value for ep in group if ep.dist and ep.dist.name == "cnnkit"} >= {
        "cnnkit_plugins.mnist",
        "cnnkit_plugins.nets",
        "cnnkit_plugins.optimizers",
    }


def test_a_plugin_registered_for_one_test() -> None:
    def register_architectures(register):
        register("tiny", "some.module:Tiny", aliases=("t",), description="a tiny net")

    module = plugin_module("tiny_plugin", cnnkit_register_architectures=register_architectures)
    _, registries = create_plugin_manager(extra_plugins=[module])
    entry = registries.architectures.entry("t")
    assert (entry.name, entry.description, entry.plugin) == ("tiny", "a tiny net", "tiny_plugin")
    _, fresh = create_plugin_manager()
    assert "tiny" not in fresh.architectures


def test_duplicate_name_or_alias_names_both_plugins() -> None:
    def clash(register):
        register("my_net", object(), aliases=("net_1",))

    with pytest.raises(PluginError) as error:
        create_plugin_manager(extra_plugins=[plugin_module("clashing", cnnkit_register_architectures=clash)])
    message = str(error.value)
    assert "'net_1'" in message and "cnnkit:nets" in message and "clashing" in message


def test_unknown_name_lists_what_exists_and_the_closest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    _, registries = create_plugin_manager()
    with pytest.raises(UsageError) as error:
        registries.datasets.get("mnsit")
    assert "did you mean 'mnist'" in str(error.value)
    assert "(available: cifar10, mnist)" in str(error.value)


def test_registry_refuses_duplicates_directly() -> None:
    registry: Registry[int] = Registry("thing")
    registry.add(Entry("thing", "a", 1, "p1"))
    with pytest.raises(PluginError, match="'a' is registered twice: by plugin 'p1' and by plugin 'p2'"):
        registry.add(Entry("thing", "a", 2, "p2"))


def test_a_plugin_raising_inside_a_hook_is_named() -> None:
    def broken(register):
        raise RuntimeError("boom")

    with pytest.raises(PluginError, match="plugin 'exploding' failed in cnnkit_register_datasets: RuntimeError: boom"):
        create_plugin_manager(extra_plugins=[plugin_module("exploding", cnnkit_register_datasets=broken)])


def test_lazy_target_that_cannot_be_imported_is_a_clear_error() -> None:
    entry = Entry("architecture", "ghost", "no_such_module:Net", "ghost-plugin")
    with pytest.raises(PluginError, match="architecture 'ghost' from plugin 'ghost-plugin' points to"):
        entry.load()


class _FakeDist:
    def __init__(self, name: str) -> None:
        self.name, self.version, self.metadata = name, "9.9", {"Name": name}


def _with_fake_entry_point(monkeypatch: pytest.MonkeyPatch, value: str, dist: str) -> None:
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "cnnkit":
            ep = importlib.metadata.EntryPoint("broken", value, "cnnkit")
            object.__setattr__(ep, "dist", _FakeDist(dist))
            found.append(ep)
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_plugin_failing_to_import_is_reported_by_distribution_and_spares_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _with_fake_entry_point(monkeypatch, "cnnkit_no_such_plugin_module", "acme-cnn")
    _, registries = create_plugin_manager()
    assert [(p.distribution, p.loaded) for p in registries.failures] == [("acme-cnn", False)]
    assert "No module named 'cnnkit_no_such_plugin_module'" in registries.failures[0].error
    assert "mnist" in registries.datasets and "pooling_cnn" in registries.architectures


def test_autoload_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_fake_entry_point(monkeypatch, "cnnkit_no_such_plugin_module", "acme-cnn")
    monkeypatch.setenv("CNNKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    _, registries = create_plugin_manager()
    assert registries.failures == []
    assert {p.distribution for p in registries.plugins} == {"cnnkit"}
    assert "mnist" in registries.datasets


def test_registering_and_listing_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from cnnkit.plugins import create_plugin_manager; create_plugin_manager(); "
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
