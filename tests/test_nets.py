"""The two nets: exact layer stacks and parameter counts, presets, init, padding, loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnkit.data.datamodule import one_hot
from cnnkit.nets.layers import SameConv2d
from cnnkit.nets.summary import format_summary, summarize
from cnnkit.plugins import create_plugin_manager

REGISTRIES = create_plugin_manager()[1]
EXPECTED = {
    ("mnist", "pooling_cnn"): (
        1_625_866,
        [320, 18_496, 0, 0, 1_605_760, 1_290],
        [(None, 28, 28, 32), (None, 28, 28, 64), (None, 14, 14, 64), (None, 12544), (None, 128), (None, 10)],
    ),
    ("mnist", "strided_cnn"): (
        1_625_866,
        [320, 18_496, 0, 1_605_760, 1_290],
        [(None, 28, 28, 32), (None, 14, 14, 64), (None, 12544), (None, 128), (None, 10)],
    ),
    ("cifar10", "pooling_cnn"): (
        2_117_962,
        [896, 18_496, 0, 0, 2_097_280, 1_290],
        [(None, 32, 32, 32), (None, 32, 32, 64), (None, 16, 16, 64), (None, 16384), (None, 128), (None, 10)],
    ),
    ("cifar10", "strided_cnn"): (
        2_117_962,
        [896, 18_496, 0, 2_097_280, 1_290],
        [(None, 32, 32, 32), (None, 16, 16, 64), (None, 16384), (None, 128), (None, 10)],
    ),
}


def build(dataset: str, architecture: str, preset: str = "keras", optimizer: str | None = None):
    datamodule = REGISTRIES.datasets.get(dataset)
    spec = REGISTRIES.optimizers.get(optimizer) if optimizer else None
    model = REGISTRIES.architectures.get(architecture)(datamodule.input_shape(), datamodule.num_classes(), spec, preset)
    return datamodule, model


@pytest.mark.parametrize(("dataset", "architecture"), sorted(EXPECTED))
@pytest.mark.parametrize("preset", ["keras", "torch"])
def test_layer_stacks_and_parameter_counts(dataset: str, architecture: str, preset: str) -> None:
    total, params, shapes = EXPECTED[(dataset, architecture)]
    datamodule, model = build(dataset, architecture, preset)
    rows = summarize(model.network, datamodule.input_shape()).layers
    assert [row.params for row in rows] == params
    assert [row.output_shape for row in rows] == shapes
    assert sum(p.numel() for p in model.parameters()) == total
    logits = model(torch.zeros(3, *datamodule.input_shape()))
    assert logits.shape == (3, 10)


# Multiply-adds per layer: a 3x3 conv does 9 x in x out per output pixel, a dense layer in x out (pooling none).
MACS = {
    ("mnist", "pooling_cnn"): [9 * 32 * 784, 9 * 32 * 64 * 784, 0, 0, 12544 * 128, 1280],  # 16,283,392
    ("mnist", "strided_cnn"): [9 * 32 * 784, 9 * 32 * 64 * 196, 0, 12544 * 128, 1280],  # 5,445,376
    ("cifar10", "pooling_cnn"): [27 * 32 * 1024, 9 * 32 * 64 * 1024, 0, 0, 16384 * 128, 1280],  # 21,857,536
    ("cifar10", "strided_cnn"): [27 * 32 * 1024, 9 * 32 * 64 * 256, 0, 16384 * 128, 1280],  # 7,701,760
}


@pytest.mark.parametrize(("dataset", "architecture"), sorted(MACS))
def test_multiply_adds_per_layer_and_in_total(dataset: str, architecture: str) -> None:
    datamodule, model = build(dataset, architecture)
    summary = summarize(model.network, datamodule.input_shape())
    assert [row.macs for row in summary.layers] == MACS[(dataset, architecture)]
    assert summary.counts.macs == sum(MACS[(dataset, architecture)])
    assert (summary.counts.params, summary.counts.non_trainable_params) == (EXPECTED[(dataset, architecture)][0], 0)


def test_summary_text_is_keras_style() -> None:
    datamodule, model = build("mnist", "net_1")
    text = format_summary("pooling_cnn", summarize(model.network, datamodule.input_shape()))
    assert text.splitlines()[-4:] == [
        "Multiply-adds per image: 16,283,392",
        "Trainable params: 1,625,866",
        "Non-trainable params: 0",
        "Total params: 1,625,866",
    ]
    assert "max_pooling2d (MaxPooling2D)" in text and "(None, 14, 14, 64)" in text and "1,605,760" in text


def test_keras_same_padding_with_stride_2_pads_bottom_right() -> None:
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left pixel of each window
        conv.bias.zero_()
    image = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    # TF "same", stride 2 on 4x4: output 2x2, total pad 1 all on the bottom/right, so windows start at 0 and 2.
    assert conv(image).squeeze().tolist() == [[1.0, 3.0], [9.0, 11.0]]
    symmetric = torch.nn.Conv2d(1, 1, 3, stride=2, padding=1)
    symmetric.load_state_dict(conv.state_dict())
    assert symmetric(image).squeeze().tolist() != [[1.0, 3.0], [9.0, 11.0]]


def test_keras_preset_initialises_glorot_uniform_and_zero_biases() -> None:
    torch.manual_seed(0)
    _, model = build("mnist", "pooling_cnn", "keras")
    dense = model.network[6]
    limit = (6 / (12544 + 128)) ** 0.5
    assert torch.count_nonzero(dense.bias) == 0
    assert dense.weight.abs().max() <= limit and dense.weight.abs().max() > 0.95 * limit
    _, torch_model = build("mnist", "pooling_cnn", "torch")
    assert torch.count_nonzero(torch_model.network[6].bias) > 0


@pytest.mark.parametrize(
    ("name", "preset", "expected"),
    [
        ("adam", "keras", {"lr": 1e-3, "eps": 1e-7, "betas": [0.9, 0.999]}),
        ("adagrad", "keras", {"lr": 1e-3, "initial_accumulator_value": 0.1, "eps": 1e-7}),
        ("adadelta", "keras", {"lr": 1e-3, "rho": 0.95, "eps": 1e-7}),
        ("adam", "torch", {"lr": 1e-3, "eps": 1e-8}),
        ("adagrad", "torch", {"lr": 1e-2, "initial_accumulator_value": 0.0, "eps": 1e-10}),
        ("adadelta", "torch", {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
    ],
)
def test_preset_hyperparameters(name: str, preset: str, expected: dict) -> None:
    resolved = REGISTRIES.optimizers.get(name).hyperparameters(preset)
    assert {k: resolved[k] for k in expected} == expected
    _, model = build("mnist", "net_1", preset, name)
    group = model.configure_optimizers().param_groups[0]
    assert group["lr"] == expected["lr"]


def test_lr_override() -> None:
    assert REGISTRIES.optimizers.get("adadelta").hyperparameters("keras", lr=1.0)["lr"] == 1.0


def test_cross_entropy_on_logits_is_softmax_plus_categorical_cross_entropy_on_one_hot() -> None:
    torch.manual_seed(1)
    logits, labels = torch.randn(16, 10), torch.randint(0, 10, (16,))
    categorical = -(one_hot(labels, 10) * torch.log(torch.softmax(logits, dim=1))).sum(dim=1).mean()
    assert torch.allclose(F.cross_entropy(logits, labels), categorical, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_cpu_device_names_its_threads_in_good_english(threads: int) -> None:
    """config.json's device: "CPU x86_64 (1 thread)", "(2 threads)"; the report reads both forms."""
    import platform

    from cnnkit.results.records import describe_device

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        expected = f"CPU {platform.machine()} ({threads} thread{'s' if threads > 1 else ''})"
        assert describe_device(torch.device("cpu")) == expected
    finally:
        torch.set_num_threads(before)
