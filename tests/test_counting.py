"""Counts that hold for any network: a nested residual net is counted as torch counts it, rows follow forward calls."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.nets.counting import count_network, parameter_counts
from cnnkit.nets.summary import format_summary, summarize

INPUT = (1, 28, 28)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class TinyResNet(nn.Module):
    """stem - block - max-pool - block - global average pool - dense; the head is declared first, called last."""

    def __init__(self, channels: int = 16, num_classes: int = 10) -> None:
        super().__init__()
        self.head = nn.Linear(channels, num_classes)
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.block1 = ResidualBlock(channels)
        self.pool = nn.MaxPool2d(2)
        self.block2 = ResidualBlock(channels)
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.pool(self.block1(self.stem(x))))
        return self.head(torch.flatten(self.gap(x), 1))


# By hand, for 16 channels on 28x28: stem 9*16 + 16 weights and 2*16 BN (+2*16 running stats); a block 2*(9*16*16)
# + 2*(2*16) (+2*(2*16) running stats); the head 16*10 + 10.
STEM, BLOCK, HEAD = 160 + 32, 2 * 2304 + 64, 170
TRAINABLE = STEM + 2 * BLOCK + HEAD  # 9,706
RUNNING_STATS = 32 + 2 * 64  # 160
# Multiply-adds: each 3x3 conv does 9*in*out per output pixel; the dense layer 16*10. (A per-layer-type count of
# the top-level layers found only the stem and the head: 113,056.)
MACS = 9 * 16 * 28 * 28 + 2 * 9 * 16 * 16 * 28 * 28 + 2 * 9 * 16 * 16 * 14 * 14 + 160  # 4,628,896


@pytest.fixture
def resnet() -> TinyResNet:
    torch.manual_seed(0)
    return TinyResNet()


def torch_flops(network: nn.Module) -> int:
    network.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(torch.zeros(1, *INPUT))
    return counter.get_total_flops()


def test_residual_net_counts_equal_torchs(resnet: TinyResNet) -> None:
    counts = count_network(resnet, INPUT)
    assert counts.macs == torch_flops(resnet) // 2 == MACS
    assert counts.trainable_params == sum(p.numel() for p in resnet.parameters()) == TRAINABLE
    bn_state = sum(
        m.running_mean.numel() + m.running_var.numel() for m in resnet.modules() if hasattr(m, "running_var")
    )
    assert counts.non_trainable_params == bn_state == RUNNING_STATS
    assert counts.params == TRAINABLE + RUNNING_STATS


def test_residual_net_summary_has_one_row_per_block_in_call_order(resnet: TinyResNet) -> None:
    summary = summarize(resnet, INPUT)
    rows = [(r.name, r.type, r.output_shape, r.params, r.non_trainable) for r in summary.layers]
    assert rows == [
        ("sequential", "Sequential", (None, 28, 28, 16), STEM + 32, 32),
        ("residual_block", "ResidualBlock", (None, 28, 28, 16), BLOCK + 64, 64),
        ("max_pooling2d", "MaxPooling2D", (None, 14, 14, 16), 0, 0),
        ("residual_block_1", "ResidualBlock", (None, 14, 14, 16), BLOCK + 64, 64),
        ("adaptive_avg_pool2d", "AdaptiveAvgPool2d", (None, 1, 1, 16), 0, 0),
        ("dense", "Dense", (None, 10), HEAD, 0),
    ]
    assert [r.macs for r in summary.layers] == [9 * 16 * 784, 18 * 256 * 784, 0, 18 * 256 * 196, 0, 160]
    assert sum(r.params for r in summary.layers) == summary.counts.params
    text = format_summary("tiny_resnet", summary)
    assert text.splitlines()[-4:] == [
        f"Multiply-adds per image: {MACS:,}",
        "Trainable params: 9,706",
        "Non-trainable params: 160",
        "Total params: 9,866",
    ]
    assert "residual_block_1 (ResidualBlock)" in text and "(None, 14, 14, 16)" in text


def test_model_record_keeps_params_as_the_total_and_adds_the_split_and_macs(resnet: TinyResNet) -> None:
    record = summarize(resnet, INPUT).as_dict()
    assert {k: record[k] for k in ("params", "trainable_params", "non_trainable_params", "macs")} == {
        "params": 9_866,
        "trainable_params": 9_706,
        "non_trainable_params": 160,
        "macs": MACS,
    }
    assert record["layers"][1] == {
        "name": "residual_block",
        "type": "ResidualBlock",
        "output_shape": [None, 28, 28, 16],
        "params": BLOCK + 64,
        "non_trainable": 64,
        "macs": 18 * 256 * 784,
    }


def test_frozen_parameters_are_non_trainable_and_the_batch_counter_is_no_weight(resnet: TinyResNet) -> None:
    for p in resnet.head.parameters():
        p.requires_grad_(False)
    assert parameter_counts(resnet) == (TRAINABLE - HEAD, RUNNING_STATS + HEAD)
    assert parameter_counts(nn.BatchNorm2d(8)) == (16, 16)  # num_batches_tracked (int64) is not counted
    assert parameter_counts(nn.BatchNorm2d(8, track_running_stats=False)) == (16, 0)


def test_counting_leaves_every_modules_mode_as_it_was(resnet: TinyResNet) -> None:
    resnet.train()
    resnet.block1.bn1.eval()  # e.g. a frozen batch norm inside a training net
    count_network(resnet, INPUT)
    assert resnet.training and resnet.block2.bn1.training and not resnet.block1.bn1.training
    assert resnet.block1.bn1.num_batches_tracked.item() == 0  # counted in eval mode: running stats untouched


class OwnWeights(nn.Module):
    """A net that holds a weight itself and uses it outside any child."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU())
        self.classifier = nn.Parameter(torch.zeros(10, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(self.features(x), self.classifier)


def test_weights_and_work_of_the_net_itself_make_a_last_row() -> None:
    summary = summarize(OwnWeights(), INPUT)
    assert [(r.name, r.params, r.macs) for r in summary.layers] == [
        ("sequential", 784 * 32 + 32, 784 * 32),
        ("own_weights", 320, 320),
    ]
    assert (summary.counts.params, summary.counts.macs) == (784 * 32 + 32 + 320, 784 * 32 + 320)


def test_a_single_layer_is_its_own_row() -> None:
    summary = summarize(nn.Conv2d(1, 4, 3), INPUT)
    assert [(r.name, r.type, r.output_shape, r.params, r.macs) for r in summary.layers] == [
        ("conv2d", "Conv2D", (None, 26, 26, 4), 40, 9 * 4 * 26 * 26)
    ]


def test_a_child_the_forward_pass_never_calls_still_shows_its_weights() -> None:
    network = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    network.add_module("unused_head", nn.Linear(10, 2))
    network.forward = lambda x: network[1](network[0](x))  # type: ignore[method-assign]
    summary = summarize(network, INPUT)
    assert [(r.name, r.output_shape, r.params) for r in summary.layers] == [
        ("flatten", (None, 784), 0),
        ("dense", (None, 10), 7_850),
        ("dense_1", (), 22),
    ]
    assert summary.counts.params == 7_872
    assert "dense_1 (Dense)" in format_summary("x", summary).splitlines()[6] and " ? " in format_summary("x", summary)
