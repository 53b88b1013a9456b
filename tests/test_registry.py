"""Plugin manager and registries: built-ins through entry points, duplicates, unknown names, broken plugins."""

from __future__ import annotations

import importlib.metadata
import json
import types

import pytest

from cnnkit import hookimpl
from cnnkit.errors import PluginError, UsageError
from cnnkit.plugins import create_plugin_manager
from cnnkit.registry import Entry, ReaderInfo, Registry

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


def test_builtin_datasets_and_nets_describe_themselves_to_the_reader() -> None:
    _, registries = create_plugin_manager()
    mnist, cifar = registries.datasets.entry("mnist").reader, registries.datasets.entry("cifar10").reader
    assert (mnist.name_or("mnist"), mnist.cite_as) == ("MNIST", "LeCun et al., 1998")
    assert mnist.citation.startswith("LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-based")
    assert (cifar.name_or("cifar10"), cifar.cite_as) == ("CIFAR-10", "Krizhevsky, 2009")
    assert "tiny images" in cifar.citation
    pooling, strided = (registries.architectures.entry(name).reader for name in ("net_1", "net_2"))
    assert [pooling.name_or("x", lang) for lang in ("en", "es")] == ["Pooling CNN (net_1)", "CNN con pooling (net_1)"]
    assert [strided.name_or("x", lang) for lang in ("en", "es")] == ["Strided CNN (net_2)", "CNN con paso 2 (net_2)"]
    assert "max-pooling" in pooling.summary_in("en") and "max-pooling" in pooling.summary_in("es")
    assert "stride 2" in strided.summary_in("en") and "paso 2" in strided.summary_in("es")
    for entry in (*registries.datasets, *registries.architectures):
        if entry.distribution == "cnnkit":
            assert entry.reader.summary_in("en") and entry.reader.summary_in("es") != entry.reader.summary_in("en")
    assert registries.optimizers.entry("adam").reader.cite_as == "Kingma & Ba, 2015"


def test_reader_info_falls_back_to_english_and_to_the_registry_name() -> None:
    plain = ReaderInfo()
    assert (plain.name_or("tiny_mlp"), plain.name_or("tiny_mlp", "es"), plain.summary_in("es")) == ("tiny_mlp",) * 2 + (
        "",
    )
    one = ReaderInfo(display_name="LeNet-5", summary="A classic.")  # one text serves every language
    assert (one.name_or("lenet5", "es"), one.summary_in("es")) == ("LeNet-5", "A classic.")
    both = ReaderInfo(summary={"en": "Digits.", "es": "Dígitos."})
    assert (both.summary_in("es"), both.summary_in("fr")) == ("Dígitos.", "Digits.")


def test_a_dataset_gives_its_class_names_per_language_for_all_its_classes_or_not_at_all() -> None:
    named = ReaderInfo(class_names={"es": ("cero", "uno")})
    assert named.classes_in("es", ["zero", "one"]) == ["cero", "uno"]
    assert named.classes_in("en", ["zero", "one"]) is None  # the recorded names then
    assert named.classes_in("es", ["zero", "one", "two"]) is None  # not every class: none of them
    with pytest.raises(TypeError, match=r"ReaderInfo\.class_names must map a language to a tuple of str"):
        ReaderInfo(class_names={"es": "cero"})


def test_a_plugin_registers_reader_info_and_cnnkit_list_json_shows_it(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.cli import main
    from cnnkit.plugins import set_registries

    def register_architectures(register):
        reader = ReaderInfo(display_name="Tiny MLP", citation="Rosenblatt, F. (1958). The perceptron.")
        register("tiny", "some.module:Tiny", description="a tiny net", reader=reader)
        register("plain", "some.module:Plain")

    module = plugin_module("reader_plugin", cnnkit_register_architectures=register_architectures)
    _, registries = create_plugin_manager(extra_plugins=[module])
    assert registries.architectures.entry("tiny").reader.citation == "Rosenblatt, F. (1958). The perceptron."
    set_registries(registries)
    try:
        assert main(["list", "architectures", "--json"]) == 0
    finally:
        set_registries(None)
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)["architectures"]}
    assert (listed["tiny"]["display_name"], listed["tiny"]["citation"]) == (
        "Tiny MLP",
        "Rosenblatt, F. (1958). The perceptron.",
    )
    assert (listed["plain"]["display_name"], listed["plain"]["citation"]) == ("plain", "")
    assert listed["pooling_cnn"]["display_name"] == "Pooling CNN (net_1)"


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        ("LeNet-5", "reader= not a ReaderInfo"),
        (None, "ReaderInfo.summary must be a str or a {language: str} mapping"),
    ],
)
def test_malformed_reader_info_is_an_error_naming_the_plugin(reader: object, message: str) -> None:
    def register_architectures(register):
        info = reader if reader is not None else ReaderInfo(summary={"en": 1})
        register("tiny", "some.module:Tiny", reader=info)

    module = plugin_module("careless", cnnkit_register_architectures=register_architectures)
    with pytest.raises(PluginError, match="careless") as error:
        create_plugin_manager(extra_plugins=[module])
    assert message in str(error.value)
