"""docs/plugins.md: its complete minimal plugin registers, builds, runs forward and trains as the guide says."""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cnnkit import hookimpl
from cnnkit.cli import main
from cnnkit.errors import PluginError, UsageError
from cnnkit.plugins import Registries, create_plugin_manager, set_registries

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
HEADING = "## A complete minimal plugin"
READER_HEADING = "## Describing an entry to the reader"
NESTED_HEADING = "### Nested blocks and exact counts"
MODULE_NAME = "cnnkit_tinymlp"
MLP_PARAMS = 28 * 28 * 64 + 64 + 64 * 10 + 10  # 50,890, as the guide's `cnnkit summary` line says
MLP_MACS = 28 * 28 * 64 + 64 * 10  # 50,816 multiply-adds per image


def guide_block(heading: str = HEADING, language: str = "python", index: int = 0) -> str:
    """The `index`-th (first) ```language block after `heading` in the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    assert heading in text, f"{GUIDE} has no heading {heading!r}"
    blocks = re.findall(rf"^```{language}\n(.*?)^```", text.split(heading, 1)[1], re.MULTILINE | re.DOTALL)
    assert len(blocks) > index, f"no ```{language} block {index} after {heading!r} in {GUIDE}"
    return str(blocks[index])


def load_guide_plugin(name: str = MODULE_NAME, heading: str = HEADING, index: int = 0) -> types.ModuleType:
    """A guide's snippet run as written, as the module `name`."""
    module = types.ModuleType(name)
    module.__file__ = f"{GUIDE}#{name}"
    exec(compile(guide_block(heading, index=index), module.__file__, "exec"), module.__dict__)
    return module


class SyntheticSource:
    """A `cnnkit.data.formats.Source` that makes a learnable 28x28x1 set: the class sets the row of a bright band."""

    def filenames(self) -> list[str]:
        return ["(synthetic)"]

    def present(self, data_dir: Path) -> bool:
        return True

    def read(self, data_dir: Path, spec: object) -> object:
        from cnnkit import ImageArrays

        rng = np.random.default_rng(0)

        def images(count: int) -> tuple[np.ndarray, np.ndarray]:
            labels = rng.integers(0, 10, count)
            x = rng.integers(0, 60, (count, 28, 28, 1), dtype=np.uint8)
            for digit in range(10):
                x[labels == digit, 2 * digit : 2 * digit + 6, 4:24] = 250
            return x, labels.astype(np.int64)

        return ImageArrays(*images(SYNTHETIC_TRAIN), *images(SYNTHETIC_TEST), "synthetic")

    def can_download(self) -> bool:
        return False

    def download(self, data_dir: Path) -> None:
        raise AssertionError("nothing to download")


SYNTHETIC_TRAIN, SYNTHETIC_TEST = 1280, 256


class SyntheticDatasetPlugin:
    """A test-only plugin (a class works as well as a module) registering the synthetic dataset."""

    @staticmethod
    @hookimpl
    def cnnkit_register_datasets(register):
        from cnnkit import ImageSetSpec, InMemoryDataModule

        class Synthetic(InMemoryDataModule):
            spec = ImageSetSpec("synthetic", 28, 28, 1, 10, SYNTHETIC_TRAIN, SYNTHETIC_TEST)
            sources = (SyntheticSource(),)

        register("synthetic", Synthetic, description="bands of 10 heights")


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = load_guide_plugin()
    monkeypatch.setitem(sys.modules, MODULE_NAME, module)
    return module


@pytest.fixture
def registries(monkeypatch: pytest.MonkeyPatch, plugin: types.ModuleType) -> Iterator[Registries]:
    """The built-ins plus the guide's plugin, for this test only (and for the CLI run in-process)."""
    monkeypatch.setenv("CNNKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    _, registries = create_plugin_manager(extra_plugins=[plugin, SyntheticDatasetPlugin])
    set_registries(registries)
    yield registries
    set_registries(None)


def test_the_guide_marks_its_minimal_plugin_and_its_pyproject() -> None:
    code = guide_block()
    assert "@hookimpl" in code and "ImageClassifier" in code
    assert len(code.strip().splitlines()) <= 40, "the minimal plugin should stay about 30 lines"
    toml = guide_block(language="toml")
    assert "[project.entry-points.cnnkit]" in toml and f'= "{MODULE_NAME}"' in toml


def test_minimal_plugin_registers_with_its_name_and_aliases(registries: Registries, plugin) -> None:
    entry = registries.architectures.entry("mlp")
    assert entry.name == "tiny_mlp"
    assert entry.aliases == ("mlp",)
    assert entry.load() is plugin.TinyMLP
    assert entry.description.startswith("Flatten")
    assert registries.architectures.canonical("tiny_mlp") == "tiny_mlp"
    assert "pooling_cnn" in registries.architectures  # the built-ins are still there


def test_minimal_plugin_is_gone_outside_the_test() -> None:
    _, fresh = create_plugin_manager()
    assert "tiny_mlp" not in fresh.architectures


def test_minimal_plugin_builds_for_mnist_and_gives_logits(registries: Registries) -> None:
    import torch

    mnist = registries.datasets.get("mnist")
    model = registries.architectures.get("tiny_mlp")(mnist.input_shape(), mnist.num_classes())
    assert sum(p.numel() for p in model.parameters()) == MLP_PARAMS
    logits = model(torch.rand(5, *mnist.input_shape()))
    assert logits.shape == (5, 10)
    assert logits.dtype == torch.float32


def test_guide_claims_about_names_hold(plugin) -> None:
    """Unknown names suggest the closest; a second plugin with the same names is refused, naming both."""
    _, registries = create_plugin_manager(extra_plugins=[plugin])
    with pytest.raises(UsageError, match=r"did you mean 'tiny_mlp'\?.*available: .*tiny_mlp"):
        registries.architectures.get("tiny_mpl")
    twin = load_guide_plugin("cnnkit_tinymlp_twin")
    with pytest.raises(PluginError, match="registered twice") as error:
        create_plugin_manager(extra_plugins=[plugin, twin])
    assert MODULE_NAME in str(error.value) and "cnnkit_tinymlp_twin" in str(error.value)


def test_cli_lists_and_summarises_the_minimal_plugin(
    registries: Registries, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", "architectures", "--json"]) == 0
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)["architectures"]}
    assert listed["tiny_mlp"]["aliases"] == ["mlp"]
    assert main(["summary", "mlp", "--dataset", "mnist"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"Total params: {MLP_PARAMS:,}")


def test_minimal_plugin_trains_through_cnnkit_run(
    registries: Registries, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cnnkit run synthetic mlp`: 4 epochs of 8 batches on CPU, through Lightning and the results contract.

    The synthetic classes are bright bands at ten different heights: any machine's rounding learns them far past
    the 0.5 asked (chance is 0.1), so the thresholds do not hang on one CPU's trajectory.
    """
    args = ["run", "synthetic", "mlp", "--epochs", "4", "--quiet", "--accelerator", "cpu", "--devices", "1"]
    assert main([*args, "--out", str(tmp_path), "--data-dir", str(tmp_path / "data")]) == 0
    result = json.loads((tmp_path / "single" / "synthetic-tiny_mlp-adam-seed0" / "result.json").read_text())
    assert (result["dataset"], result["architecture"], result["params"]) == ("synthetic", "tiny_mlp", MLP_PARAMS)
    assert len(result["history"]["train_loss"]) == 4
    config = json.loads((tmp_path / "single" / "synthetic-tiny_mlp-adam-seed0" / "config.json").read_text())
    model = config["model"]
    assert (model["params"], model["trainable_params"], model["non_trainable_params"]) == (MLP_PARAMS, MLP_PARAMS, 0)
    assert model["macs"] == MLP_MACS
    assert [(x["name"], x["params"], x["non_trainable"], x["macs"]) for x in model["layers"]] == [
        ("flatten", 0, 0, 0),
        ("dense", 28 * 28 * 64 + 64, 0, 28 * 28 * 64),
        ("dense_1", 64 * 10 + 10, 0, 64 * 10),
    ]
    assert model["layers"][1]["type"] == "Dense" and model["layers"][1]["output_shape"] == [None, 64]
    assert result["history"]["train_loss"][-1] < result["history"]["train_loss"][0]
    assert result["test_accuracy"] > 0.5  # chance is 0.1


def test_the_guides_reader_info_example_registers_a_display_name_and_citation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNKIT_DISABLE_PLUGIN_AUTOLOAD", "1")  # cnnkit-fashion would register lenet5 as well
    module = load_guide_plugin("cnnkit_guide_lenet", READER_HEADING)
    _, registries = create_plugin_manager(extra_plugins=[module])
    entry = registries.architectures.entry("lenet5")
    assert entry.as_dict()["display_name"] == "LeNet-5"
    assert entry.reader.cite_as == "LeCun et al., 1998" and "Gradient-based learning" in entry.reader.citation
    assert entry.reader.summary_in("es").startswith("LeNet-5, la red convolucional")
    fashion = pytest.importorskip("cnnkit_fashion.plugin")
    assert entry.reader.citation == fashion.LENET5_READER.citation  # what the example plugin really registers


def test_a_nested_residual_network_is_summarised_as_the_guide_shows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CNNKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    module = load_guide_plugin("cnnkit_tinyresnet", NESTED_HEADING)
    set_registries(create_plugin_manager(extra_plugins=[module])[1])
    try:
        assert main(["summary", "tiny_resnet", "--dataset", "mnist"]) == 0
    finally:
        set_registries(None)
    command, *shown = guide_block(NESTED_HEADING, "console").splitlines()
    assert command == "$ cnnkit summary tiny_resnet --dataset mnist"
    out = capsys.readouterr().out
    assert out.splitlines() == shown
    assert out.splitlines()[-2:] == ["Non-trainable params: 160", "Total params: 9,866"]


# ------------------------------------------------------------------------------------------ the guide's words
def test_the_guide_says_one_number_of_hooks_and_it_is_the_number_of_hookspecs() -> None:
    from cnnkit import hookspecs

    specs = [name for name in dir(hookspecs) if name.startswith("cnnkit_register_")]
    text = GUIDE.read_text(encoding="utf-8")
    numbers = set(re.findall(r"\b(one|two|three|four|five|six|seven|eight)\b (?:hooks|of the six hooks)", text))
    numbers |= set(re.findall(r"\bof the (\w+) hooks\b", text)) | set(re.findall(r"these (\w+) hooks", text))
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"]
    assert numbers == {words[len(specs)]}, numbers
    assert all(f"`{spec}(register)`" in text for spec in specs)


def test_the_public_api_table_names_every_public_plugin_name() -> None:
    import cnnkit

    python_api = {"run", "run_study", "load_study", "RunResult", "StudyResult", "__version__"}
    table = GUIDE.read_text(encoding="utf-8").split("## The public API", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(\w+)`", "\n".join(line.split("|")[1] for line in table.splitlines() if "|" in line)))
    assert set(cnnkit.__all__) - python_api <= listed, set(cnnkit.__all__) - python_api - listed


def test_the_augmentation_snippets_run_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    package = types.ModuleType("my_plugin")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "my_plugin", package)
    monkeypatch.setitem(sys.modules, "my_plugin.ops", load_guide_plugin("my_plugin.ops", "## Augmentations", 1))
    monkeypatch.setenv("CNNKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugin = load_guide_plugin("cnnkit_guide_vflip", "## Augmentations")
    _, registries = create_plugin_manager(extra_plugins=[plugin])
    flip = registries.augmentations.get("vflip")
    images = torch.arange(8 * 3 * 4 * 4, dtype=torch.uint8).reshape(8, 3, 4, 4)
    out = flip(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    flipped = [bool(torch.equal(o, i.flip(-2))) for o, i in zip(out, images, strict=True)]
    kept = [bool(torch.equal(o, i)) for o, i in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)
    assert registries.augmentations.entry("vflip").reader.name_or("vflip", "es") == "volteos verticales aleatorios"


def test_the_schedule_snippet_runs_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("CNNKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugin = load_guide_plugin("cnnkit_guide_schedules", "## Schedules")
    _, registries = create_plugin_manager(extra_plugins=[plugin])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = registries.schedules.get("step10").build(optimizer, epochs=30)["scheduler"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # divided by 10 after 10 epochs, as it says
    floor = registries.schedules.get("cosine-floor")
    assert floor.resolved(30) == {"eta_min": 1e-5, "T_max": 30}
