"""The convnet family: its table given on the command line, in study files and the API; presets; counts; names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import cli, write_mnist_npz
from torch import nn

import cnnkit
from cnnkit.errors import UsageError
from cnnkit.nets.convnet import ConvNetArchitecture, arch_tag, convnet
from cnnkit.nets.layers import Add, SameConv2d
from cnnkit.nets.summary import summarize
from cnnkit.plugins import get_registries
from cnnkit.studies.study import load_study_file, refuse_shared_directories
from cnnkit.training.config import RunConfig
from cnnkit.training.settings import run_config

REGISTRIES = get_registries()
SHIPPED = Path(__file__).parents[1] / "examples" / "results"


def checked(architecture: str = "convnet", dataset: str = "cifar10", **settings) -> RunConfig:
    return run_config(dataset, architecture, **settings).checked(REGISTRIES)


def build(architecture: str, dataset: str = "cifar10", preset: str = "keras", **settings):
    shape = REGISTRIES.datasets.get(dataset).input_shape()
    model = REGISTRIES.architectures.get(architecture)(shape, 10, None, preset, **settings)
    return shape, model


# --- the table on the command line: one line, exit 2, for every kind of mistake


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("{ head = [64] }", "the convnet family needs 'stages'"),
        ("{ stages = [] }", "'stages' must be a non-empty list"),
        ("{ stages = [[32, 0]] }", "has a width below 1 (0)"),
        ('{ stages = [[32]], nrom = "batch" }', "unknown key 'nrom'; did you mean 'norm'?"),
        ('{ stages = [[32]], norm = "layer" }', "'norm' must be one of 'none', 'batch', got 'layer'"),
        ('{ stages = [[32]], downsample = "avgpool" }', "'downsample' must be one of"),
        ('{ stages = [[32]], head = "flat" }', "'head' must be a list of hidden dense widths"),
        ("{ stages = [[32]], dropout = 1.5 }", "'dropout' must be a rate"),
        ("{ stages = [[32]], dropout = { stage = 0.1 } }", "unknown key 'stage' in 'dropout'"),
        ('{ stages = [[32, 32], [64]], padding = [["same", "valid"]] }', "'padding' must have one list per stage"),
        ("{ stages = [[8], [8], [8], [8], [8], [8]] }", "does not fit a 32 × 32 input"),
        ('{ stages = [[8]], padding = "valid", downsample = "none", head = [0] }', "'head' has a width below 1"),
        ("{ stages = [[8]] ", "--arch must be a TOML inline table"),
    ],
)
@pytest.mark.parametrize("command", ["summary", "run"])
def test_a_bad_table_is_one_line_and_exit_2(capsys, command: str, arch: str, message: str) -> None:
    args = ["summary", "convnet", "--dataset", "cifar10"] if command == "summary" else ["run", "cifar10", "convnet"]
    code, _, err = cli(capsys, *args, "--arch", arch)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_table_for_an_architecture_outside_the_family_is_refused(capsys) -> None:
    from cnnkit.plugins import create_plugin_manager, set_registries

    class Plain(cnnkit.ImageClassifier):
        def build_network(self, input_shape, num_classes, preset):
            return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], num_classes))

    class Plugin:
        @cnnkit.hookimpl
        def cnnkit_register_architectures(self, register):
            register("plain", Plain)

    set_registries(create_plugin_manager(extra_plugins=[Plugin()])[1])
    try:
        code, _, err = cli(capsys, "summary", "plain", "--dataset", "mnist", "--arch", "{ stages = [[8]] }")
        assert code == 2 and "plain is not one of them" in err
        assert cli(capsys, "summary", "plain", "--dataset", "mnist")[0] == 0  # without a table it builds as before
    finally:
        set_registries(None)
    with pytest.raises(UsageError, match="takes no arch table"):
        Plain((1, 28, 28), 10, arch={"stages": [[8]]})


# --- counts: Keras-style summary, a plain torch build of the same layers


def test_keras_cifar10_has_the_keras_examples_1_250_858_parameters(capsys) -> None:
    code, out, _ = cli(capsys, "summary", "keras_cifar10", "--dataset", "cifar10")
    assert code == 0
    assert out.splitlines()[-1] == "Total params: 1,250,858"
    assert "Non-trainable params: 0" in out and out.count("(Dropout)") == 3


def plain_torch(channels: int) -> nn.Sequential:
    """The layers of TABLE below, written by hand in plain torch (32 x 32 x `channels` input, 10 classes)."""
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.GELU(), nn.MaxPool2d(2),  # 16
        nn.Conv2d(16, 24, 3, padding=0, bias=False), nn.BatchNorm2d(24), nn.GELU(),  # 14
        nn.Conv2d(24, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.GELU(), nn.MaxPool2d(2),  # 7
        nn.Flatten(), nn.Linear(24 * 7 * 7, 64), nn.GELU(), nn.Dropout(0.3), nn.Linear(64, 32), nn.GELU(),
        nn.Dropout(0.3), nn.Linear(32, 10),
    )  # fmt: skip


TABLE = (
    '{ stages = [[16], [24, 24]], padding = [["same"], ["valid", "same"]], norm = "batch", activation = "gelu", '
    "head = [64, 32], dropout = { stages = 0.0, head = 0.3 } }"
)


def test_a_custom_table_counts_its_trainable_parameters_as_plain_torch_does(capsys) -> None:
    reference = plain_torch(3)
    trainable = sum(p.numel() for p in reference.parameters() if p.requires_grad)
    running = sum(m.running_mean.numel() + m.running_var.numel() for m in reference if isinstance(m, nn.BatchNorm2d))
    code, out, _ = cli(capsys, "summary", "convnet", "--dataset", "cifar10", "--arch", TABLE)
    assert code == 0
    assert f"Trainable params: {trainable:,}" in out
    assert f"Non-trainable params: {running:,}" in out  # batch norm's running statistics, as Keras counts them
    assert out.splitlines()[-1] == f"Total params: {trainable + running:,}"
    _, model = build("convnet", arch=load_table(TABLE))
    built = [type(m) for m in model.network]
    assert built == [type(m) for m in reference]  # the same layers, in the same order
    assert [tuple(p.shape) for p in model.network.parameters()] == [tuple(p.shape) for p in reference.parameters()]


def load_table(text: str) -> dict:
    import tomllib

    return tomllib.loads(f"arch = {text}")["arch"]


@pytest.mark.parametrize(
    "arch",
    [
        {"stages": [[8, 8], [16]], "padding": "valid", "downsample": "stride"},
        {"stages": [[8], [16, 16], [16]], "downsample": "stride", "head": "gap"},
        {"stages": [[8, 8], [8, 8]], "downsample": "none", "residual": True, "norm": "batch", "head": []},
        {"stages": [[8, 16], [16, 16, 16]], "padding": [["valid", "same"], ["same", "valid", "same"]]},
    ],
)
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
@pytest.mark.parametrize("preset", ["keras", "torch"])
def test_the_planned_sizes_are_those_torch_computes(arch: dict, dataset: str, preset: str) -> None:
    shape, model = build("convnet", dataset, preset, arch=arch)
    logits = model(torch.zeros(2, *shape))
    assert logits.shape == (2, 10)
    spec = model.spec
    first_dense = next(m for m in model.network if isinstance(m, nn.Linear))
    assert first_dense.in_features == spec.features(shape)
    rows = summarize(model.network, shape).layers
    convs = [row for row in rows if row.type == "Conv2D"]
    planned = [size for sizes, _ in spec.sizes(shape) for size in sizes]
    assert [row.output_shape[1:3] for row in convs] == planned


def test_stride_pads_as_net_2_does_under_each_preset() -> None:
    arch = {"stages": [[8, 8]], "downsample": "stride"}
    _, keras = build("convnet", "mnist", "keras", arch=arch)
    _, plain = build("convnet", "mnist", "torch", arch=arch)
    assert isinstance(keras.network[2], SameConv2d) and not isinstance(plain.network[2], SameConv2d)
    assert plain.network[2].padding == (1, 1) and plain.network[2].stride == (2, 2)


def test_a_residual_stage_adds_its_first_convs_output_before_the_last_activation() -> None:
    _, model = build("convnet", "mnist", arch={"stages": [[4, 4, 4]], "norm": "batch", "residual": True, "head": []})
    net = model.network.eval()
    add = next(m for m in net if isinstance(m, Add))
    assert [type(m).__name__ for m in net][:10] == [
        "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "Add", "ReLU",
    ]  # fmt: skip
    assert add.source == 2
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        first = net[2](net[1](net[0](x)))
        last = net[7](net[6](net[5](net[4](net[3](first)))))
        expected = net[9](last + first)
        assert torch.allclose(net[:10](x), expected)  # the first ten layers, their addition included


def test_residual_skips_stages_whose_shapes_differ() -> None:
    _, model = build("convnet", arch={"stages": [[8, 16], [16, 16]], "residual": True, "downsample": "maxpool"})
    assert sum(isinstance(m, Add) for m in model.network) == 1  # stage 1 widens 8 -> 16: nothing to add
    _, strided = build("convnet", arch={"stages": [[8, 8]], "residual": True, "downsample": "stride"})
    assert not any(isinstance(m, Add) for m in strided.network)


def test_batch_norm_follows_the_preset_and_the_convs_lose_their_bias() -> None:
    _, keras = build("vgg_bn_gap")
    _, plain = build("vgg_bn_gap", preset="torch")
    norms = [m for m in keras.network if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 6 and (norms[0].momentum, norms[0].eps) == (0.01, 1e-3)  # Keras' 0.99 and 1e-3
    assert next(m for m in plain.network if isinstance(m, nn.BatchNorm2d)).momentum == 0.1
    assert all(m.bias is None for m in keras.network if isinstance(m, nn.Conv2d))


def test_the_dropout_lever_sets_both_rates() -> None:
    _, own = build("keras_cifar10")
    assert [m.p for m in own.network if isinstance(m, nn.Dropout)] == [0.25, 0.25, 0.5]
    _, lever = build("keras_cifar10", dropout=0.1)
    assert [m.p for m in lever.network if isinstance(m, nn.Dropout)] == [0.1, 0.1, 0.1]
    assert checked("keras_cifar10", dropout=0.1).dir_name == "cifar10-keras_cifar10-adam-drop0.1-seed0"


# --- names: existing ones unchanged, two networks never share one, one network has one


def test_every_existing_run_name_is_unchanged() -> None:
    assert checked("net_1", "mnist").dir_name == "mnist-pooling_cnn-adam-seed0"
    assert checked("net_2", "mnist", optimizer="adadelta", lr=0.1).dir_name == "mnist-strided_cnn-adadelta-lr0.1-seed0"
    assert checked("net_1", augment=("flip", "crop")).dir_name == "cifar10-pooling_cnn-adam-aug_flip+crop-seed0"
    assert checked("net_1").arch is None


def test_a_table_names_the_directory_by_what_it_changes() -> None:
    config = checked(arch={"stages": [[16], [32, 32]], "norm": "batch", "head": "gap"})
    assert config.dir_name == "cifar10-convnet-adam-arch_16+32.32_bn_gap-seed0"
    explicit = checked(arch={"stages": [[16], [32, 32]], "norm": "batch", "head": "gap", "downsample": "maxpool"})
    assert explicit.dir_name == config.dir_name  # a key at its default changes nothing
    assert checked("keras_cifar10", arch={"head": [512], "norm": "batch"}).dir_name == (
        "cifar10-keras_cifar10-adam-arch_bn-seed0"  # the preset's own head is no change
    )
    assert checked("keras_cifar10", arch={"head": [128]}).dir_name == "cifar10-keras_cifar10-adam-arch_h128-seed0"
    stages = [[32, 32, 32], [64, 64, 64], [128, 128, 128]]
    long = checked(arch={"stages": stages, "norm": "batch", "activation": "gelu", "head": "gap"})
    assert long.dir_name.startswith("cifar10-convnet-adam-arch_") and len(long.dir_name.split("-")[3]) == 13
    assert long.dir_name != checked(arch={"stages": stages, "norm": "batch", "head": "gap"}).dir_name


def test_a_table_is_recorded_as_data_and_shown_in_one_line() -> None:
    config = checked(arch={"stages": [[16], [32, 32]], "norm": "batch", "head": "gap"})
    assert str(config.arch) == '{ stages = [[16], [32, 32]], norm = "batch", head = "gap" }'
    from cnnkit.training.config import describe_settings, settings_record

    assert settings_record(config)["arch"] == {"stages": [[16], [32, 32]], "norm": "batch", "head": "gap"}
    assert describe_settings(config) == 'arch { stages = [[16], [32, 32]], norm = "batch", head = "gap" }'
    assert config.differences_from(json.loads(json.dumps(settings_record(config)))) == []
    assert arch_tag(settings_record(config)["arch"]) == "arch_16+32.32_bn_gap"  # read back from config.json


def test_a_config_with_a_table_stays_hashable_and_pickles() -> None:
    import pickle

    config = checked(arch={"stages": [[8]], "dropout": {"stages": 0.1, "head": 0.2}})
    assert pickle.loads(pickle.dumps(config)) == config and hash(config) == hash(pickle.loads(pickle.dumps(config)))
    with pytest.raises(TypeError):
        config.arch["norm"] = "batch"  # type: ignore[index]


# --- study files and the API


def write_study(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n[defaults]\ndataset = "cifar10"\narchitecture = "convnet"\nepochs = 1\n' + body)
    return path


def names_of(path: Path) -> list[str]:
    study = load_study_file(path)
    planned = [(config.checked(REGISTRIES), spec) for config, spec in study.expand()]
    refuse_shared_directories(study, planned)
    return [config.dir_name for config, _ in planned]


def test_a_grid_varies_a_key_of_the_table_dotted_or_nested_alike(tmp_path: Path) -> None:
    dotted = names_of(
        write_study(tmp_path, '[[runs]]\narch = { stages = [[16]] }\ngrid = { "arch.norm" = ["none", "batch"] }\n')
    )
    nested = names_of(
        write_study(tmp_path, '[[runs]]\narch = { stages = [[16]] }\ngrid = { arch = { norm = ["none", "batch"] } }\n')
    )
    assert dotted == nested == ["cifar10-convnet-adam-arch_16-seed0", "cifar10-convnet-adam-arch_16_bn-seed0"]
    bare = names_of(write_study(tmp_path, '[[runs]]\narch = { stages = [[16]] }\ngrid = { arch.norm = ["batch"] }\n'))
    assert bare == ["cifar10-convnet-adam-arch_16_bn-seed0"]  # TOML's own dotted key is the nested form


def test_a_runs_table_adds_to_the_defaults_table(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "s"\n[defaults]\ndataset = "cifar10"\narchitecture = "convnet"\narch = { stages = [[16]] }\n'
        '[[runs]]\n[[runs]]\narch = { head = "gap" }\n'
    )
    assert names_of(path) == ["cifar10-convnet-adam-arch_16-seed0", "cifar10-convnet-adam-arch_16_gap-seed0"]


def test_two_tables_of_one_network_are_refused_as_one_directory(tmp_path: Path) -> None:
    path = write_study(tmp_path, '[[runs]]\narchitecture = "keras_cifar10"\ngrid = { "arch.head" = [[512], [256]] }\n'
                       '[[runs]]\narchitecture = "keras_cifar10"\n')  # fmt: skip
    with pytest.raises(UsageError, match="would share the directory cifar10-keras_cifar10-adam-seed0"):
        names_of(path)


def test_a_bad_table_in_a_study_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_study(tmp_path, '[[runs]]\narch = { stages = [[16]], nrom = "batch" }\n')
    with pytest.raises(UsageError, match=r"s\.toml, line 7: arch: unknown key 'nrom'"):
        load_study_file(path)


def test_the_api_trains_a_table_and_records_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_mnist_npz(data)
    arch = {"stages": [[4], [8, 8]], "norm": "batch", "head": "gap", "residual": True}
    result = cnnkit.run(
        "mnist", "convnet", arch=arch, epochs=1, subset=200, out=tmp_path / "runs", data_dir=data, quiet=True,
        accelerator="cpu",
    )  # fmt: skip
    assert result.dir.name == "mnist-convnet-adam-arch_4+8.8_bn_res_gap-seed0"
    assert result.config["run"]["arch"] == arch
    rows = result.config["model"]["layers"]
    assert [row["type"] for row in rows].count("BatchNormalization") == 3 and rows[-2][
        "type"
    ] == "GlobalAveragePooling2D"
    assert result.config["model"]["non_trainable_params"] == 2 * (4 + 8 + 8)
    again = cnnkit.run(
        "mnist", "convnet", arch=dict(reversed(list(arch.items()))), epochs=1, subset=200, out=tmp_path / "runs",
        data_dir=data, quiet=True, accelerator="cpu",
    )  # fmt: skip
    assert again.skipped and again.dir == result.dir  # the same table in another order: the same run
    summary = cnnkit.load_study(result.dir.parent).summary()
    assert list(summary["arch"]) == ['{ stages = [[4], [8, 8]], norm = "batch", residual = true, head = "gap" }']
    from html import unescape

    from cnnkit.report.localize import Formatter
    from cnnkit.report.render import render_report

    html = unescape(render_report(result.dir.parent, formats=["html"])[0].read_text(encoding="utf-8"))
    table = html.split('<table class="layers">', 1)[1].split("</table>", 1)[0]  # the network as its table gives it
    assert summary["arch"].iloc[0] in table and "BatchNormalization" in table
    assert Formatter("en").int(result.config["model"]["params"]) in table.split('class="total"', 1)[1]


# --- registration and the shipped study


def test_the_family_and_its_presets_are_listed_with_descriptions(capsys) -> None:
    code, out, _ = cli(capsys, "list", "architectures")
    assert code == 0
    for name in ("convnet", "pooling_cnn (alias net_1)", "strided_cnn (alias net_2)", "keras_cifar10", "vgg_bn_gap"):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert " - " in line and "convnet" in line
    for name in ("convnet", "pooling_cnn", "strided_cnn", "keras_cifar10", "vgg_bn_gap"):
        assert isinstance(REGISTRIES.architectures.get(name), ConvNetArchitecture)
    assert REGISTRIES.architectures.entry("net_1").plugin == REGISTRIES.architectures.entry("keras_cifar10").plugin


def test_a_third_party_preset_registers_as_data() -> None:
    from cnnkit.plugins import create_plugin_manager

    class Plugin:
        @cnnkit.hookimpl
        def cnnkit_register_architectures(self, register):
            register("tiny_bn", cnnkit.convnet(stages=[[8]], norm="batch", head="gap"), description="tiny")

    registries = create_plugin_manager(extra_plugins=[Plugin()])[1]
    model = registries.architectures.get("tiny_bn")((1, 28, 28), 10)
    assert sum(p.numel() for p in model.parameters()) == 72 + 16 + 90
    with pytest.raises(UsageError, match="unknown key"):
        convnet(stage=[[8]])


def test_cifar10_architectures_plans_nine_runs_and_net_1s_seed_0_is_cifar10_levers_run() -> None:
    study = REGISTRIES.studies.get("cifar10-architectures")
    planned = [(config.checked(REGISTRIES), spec) for config, spec in study.expand()]
    refuse_shared_directories(study, planned)
    names = [config.dir_name for config, _ in planned]
    assert len(names) == len(set(names)) == 9
    assert {config.architecture for config, _ in planned} == {"pooling_cnn", "keras_cifar10", "vgg_bn_gap"}
    assert {config.seed for config, _ in planned} == {0, 1, 2}
    assert all(c.epochs == 30 and c.augment == ("flip", "crop") and c.optimizer == "adam" for c, _ in planned)
    net_1 = next(config for config, _ in planned if config.architecture == "pooling_cnn" and config.seed == 0)
    shipped = SHIPPED / "cifar10-levers" / net_1.dir_name
    assert net_1.dir_name == "cifar10-pooling_cnn-adam-aug_flip+crop-seed0" and (shipped / "result.json").is_file()
    stored = json.loads((shipped / "config.json").read_text())["run"]
    assert net_1.differences_from(stored) == []  # copied, it counts as this study's finished run
