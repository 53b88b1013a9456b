"""net_1 and net_2 as presets of the convnet family give the figures they gave as hand-written classes.

The constants were recorded with the code before the family (commit 82876f8, plugins/networks.py's PoolingCNN and
StridedCNN): the initial weights of seed 0 under both presets on both datasets, the state-dict keys (with and
without the dropout lever: checkpoints of the shipped results load), and three tiny 1-epoch MNIST runs.
"""

from __future__ import annotations

import pytest
import torch
from helpers import real_data_dir

import cnnkit
from cnnkit.plugins import create_plugin_manager

REGISTRIES = create_plugin_manager()[1]

INITIAL_WEIGHTS = {  # (dataset, architecture, preset): {parameter: (sum, sum of |w|, first value)}
    ("mnist", "pooling_cnn", "keras"): {
        "0.weight": (-1.5959740573598538, 21.542256826156517, -0.08769461512565613),
        "0.bias": (0.0, 0.0, 0.0),
        "2.weight": (1.9007506287948672, 770.4542879424475, -0.015879333019256592),
        "2.bias": (0.0, 0.0, 0.0),
        "6.weight": (6.735337713189794, 17469.97289962165, -0.000968070758972317),
        "6.bias": (0.0, 0.0, 0.0),
        "8.weight": (4.110011334661976, 134.28774456201063, -0.07911907136440277),
        "8.bias": (0.0, 0.0, 0.0),
    },
    ("mnist", "pooling_cnn", "torch"): {
        "0.weight": (-4.403385692101438, 47.56093341129599, -0.0024956068955361843),
        "0.bias": (-0.4370788736268878, 3.9336500596255064, -0.0762253999710083),
        "2.weight": (4.991375209956004, 541.9706907133336, 0.00492214085534215),
        "2.bias": (0.0009698676876723766, 1.7821289859712124, 0.005928382743149996),
        "6.weight": (-0.10469431688573305, 7168.118662847506, -0.003515321295708418),
        "6.bias": (0.012158200450357981, 0.5414214940974489, -0.004968093242496252),
        "8.weight": (-1.1239071522177255, 55.18015320799532, -0.025966599583625793),
        "8.bias": (0.07283787406049669, 0.41586568928323686, -0.049428243190050125),
    },
    ("mnist", "strided_cnn", "keras"): {
        "0.weight": (-1.5959740573598538, 21.542256826156517, -0.08769461512565613),
        "0.bias": (0.0, 0.0, 0.0),
        "2.weight": (1.9007506287948672, 770.4542879424475, -0.015879333019256592),
        "2.bias": (0.0, 0.0, 0.0),
        "5.weight": (6.735337713189794, 17469.97289962165, -0.000968070758972317),
        "5.bias": (0.0, 0.0, 0.0),
        "7.weight": (4.110011334661976, 134.28774456201063, -0.07911907136440277),
        "7.bias": (0.0, 0.0, 0.0),
    },
    ("mnist", "strided_cnn", "torch"): {
        "0.weight": (-4.403385692101438, 47.56093341129599, -0.0024956068955361843),
        "0.bias": (-0.4370788736268878, 3.9336500596255064, -0.0762253999710083),
        "2.weight": (4.991375209956004, 541.9706907133336, 0.00492214085534215),
        "2.bias": (0.0009698676876723766, 1.7821289859712124, 0.005928382743149996),
        "5.weight": (-0.10469431688573305, 7168.118662847506, -0.003515321295708418),
        "5.bias": (0.012158200450357981, 0.5414214940974489, -0.004968093242496252),
        "7.weight": (-1.1239071522177255, 55.18015320799532, -0.025966599583625793),
        "7.bias": (0.07283787406049669, 0.41586568928323686, -0.049428243190050125),
    },
    ("cifar10", "pooling_cnn", "keras"): {
        "0.weight": (-3.8345800198731013, 58.50703033787431, -0.061487097293138504),
        "0.bias": (0.0, 0.0, 0.0),
        "2.weight": (2.597572214252068, 769.7290804320892, 0.04202473163604736),
        "2.bias": (0.0, 0.0, 0.0),
        "6.weight": (-0.5063479419200618, 19992.732308223924, 0.01251715887337923),
        "6.bias": (0.0, 0.0, 0.0),
        "8.weight": (0.3665586698043626, 129.97282181220362, -0.10674234479665756),
        "8.bias": (0.0, 0.0, 0.0),
    },
    ("cifar10", "pooling_cnn", "torch"): {
        "0.weight": (-0.07490452515048673, 83.87884897818003, -0.0014408392598852515),
        "0.bias": (0.47228362737223506, 3.0851159621961415, 0.18943822383880615),
        "2.weight": (4.254574759918341, 541.2607859956838, -0.05223679170012474),
        "2.bias": (0.1645530709324703, 1.9184365966098085, -0.00817082729190588),
        "6.weight": (3.0835944106802344, 8194.840319490992, 0.004488101229071617),
        "6.bias": (0.05527152679860592, 0.4951604511588812, 0.0007400903850793839),
        "8.weight": (0.7887282413316825, 56.34357610096367, -0.029178757220506668),
        "8.bias": (-0.23190366476774216, 0.45172369107604027, -0.0767970159649849),
    },
    ("cifar10", "strided_cnn", "keras"): {
        "0.weight": (-3.8345800198731013, 58.50703033787431, -0.061487097293138504),
        "0.bias": (0.0, 0.0, 0.0),
        "2.weight": (2.597572214252068, 769.7290804320892, 0.04202473163604736),
        "2.bias": (0.0, 0.0, 0.0),
        "5.weight": (-0.5063479419200618, 19992.732308223924, 0.01251715887337923),
        "5.bias": (0.0, 0.0, 0.0),
        "7.weight": (0.3665586698043626, 129.97282181220362, -0.10674234479665756),
        "7.bias": (0.0, 0.0, 0.0),
    },
    ("cifar10", "strided_cnn", "torch"): {
        "0.weight": (-0.07490452515048673, 83.87884897818003, -0.0014408392598852515),
        "0.bias": (0.47228362737223506, 3.0851159621961415, 0.18943822383880615),
        "2.weight": (4.254574759918341, 541.2607859956838, -0.05223679170012474),
        "2.bias": (0.1645530709324703, 1.9184365966098085, -0.00817082729190588),
        "5.weight": (3.0835944106802344, 8194.840319490992, 0.004488101229071617),
        "5.bias": (0.05527152679860592, 0.4951604511588812, 0.0007400903850793839),
        "7.weight": (0.7887282413316825, 56.34357610096367, -0.029178757220506668),
        "7.bias": (-0.23190366476774216, 0.45172369107604027, -0.0767970159649849),
    },
}
STATE_KEYS = {  # (dataset, architecture, with the dropout lever): [(key, shape), ...]
    ("mnist", "pooling_cnn", False): [
        ("0.weight", (32, 1, 3, 3)),
        ("0.bias", (32,)),
        ("2.weight", (64, 32, 3, 3)),
        ("2.bias", (64,)),
        ("6.weight", (128, 12544)),
        ("6.bias", (128,)),
        ("8.weight", (10, 128)),
        ("8.bias", (10,)),
    ],
    ("mnist", "pooling_cnn", True): [
        ("0.weight", (32, 1, 3, 3)),
        ("0.bias", (32,)),
        ("2.weight", (64, 32, 3, 3)),
        ("2.bias", (64,)),
        ("7.weight", (128, 12544)),
        ("7.bias", (128,)),
        ("10.weight", (10, 128)),
        ("10.bias", (10,)),
    ],
    ("mnist", "strided_cnn", False): [
        ("0.weight", (32, 1, 3, 3)),
        ("0.bias", (32,)),
        ("2.weight", (64, 32, 3, 3)),
        ("2.bias", (64,)),
        ("5.weight", (128, 12544)),
        ("5.bias", (128,)),
        ("7.weight", (10, 128)),
        ("7.bias", (10,)),
    ],
    ("mnist", "strided_cnn", True): [
        ("0.weight", (32, 1, 3, 3)),
        ("0.bias", (32,)),
        ("2.weight", (64, 32, 3, 3)),
        ("2.bias", (64,)),
        ("6.weight", (128, 12544)),
        ("6.bias", (128,)),
        ("9.weight", (10, 128)),
        ("9.bias", (10,)),
    ],
    ("cifar10", "pooling_cnn", False): [
        ("0.weight", (32, 3, 3, 3)),
        ("0.bias", (32,)),
        ("2.weight", (64, 32, 3, 3)),
        ("2.bias", (64,)),
        ("6.weight", (128, 16384)),
        ("6.bias", (128,)),
        ("8.weight", (10, 128)),
        ("8.bias", (10,)),
    ],
    ("cifar10", "pooling_cnn", True): [
        ("0.weight", (32, 3, 3, 3)),
        ("0.bias", (32,)),
        ("2.weight", (64, 32, 3, 3)),
        ("2.bias", (64,)),
        ("7.weight", (128, 16384)),
        ("7.bias", (128,)),
        ("10.weight", (10, 128)),
        ("10.bias", (10,)),
    ],
    ("cifar10", "strided_cnn", False): [
        ("0.weight", (32, 3, 3, 3)),
        ("0.bias", (32,)),
        ("2.weight", (64, 32, 3, 3)),
        ("2.bias", (64,)),
        ("5.weight", (128, 16384)),
        ("5.bias", (128,)),
        ("7.weight", (10, 128)),
        ("7.bias", (10,)),
    ],
    ("cifar10", "strided_cnn", True): [
        ("0.weight", (32, 3, 3, 3)),
        ("0.bias", (32,)),
        ("2.weight", (64, 32, 3, 3)),
        ("2.bias", (64,)),
        ("6.weight", (128, 16384)),
        ("6.bias", (128,)),
        ("9.weight", (10, 128)),
        ("9.bias", (10,)),
    ],
}
RUNS = {  # 1 epoch, MNIST, subset 512, seed 0, CPU: (settings, dir name, history, test loss, test accuracy)
    "net_1": (
        "net_1",
        {},
        "mnist-pooling_cnn-adam-seed0",
        {
            "train_loss": 2.1106157302856445,
            "train_accuracy": 0.3447432816028595,
            "val_loss": 1.5489003658294678,
            "val_accuracy": 0.6213592290878296,
        },
        (1.560555100440979, 0.6262000203132629),
    ),
    "net_2_dropout": (
        "net_2",
        {"dropout": 0.25},
        "mnist-strided_cnn-adam-drop0.25-seed0",
        {
            "train_loss": 2.1948771476745605,
            "train_accuracy": 0.3202933967113495,
            "val_loss": 1.777203917503357,
            "val_accuracy": 0.6990291476249695,
        },
        (1.781848669052124, 0.7020999789237976),
    ),
    "net_2_torch": (
        "net_2",
        {"preset": "torch"},
        "mnist-strided_cnn-adam-torch-seed0",
        {
            "train_loss": 2.2643849849700928,
            "train_accuracy": 0.1955990195274353,
            "val_loss": 2.0740163326263428,
            "val_accuracy": 0.41747573018074036,
        },
        (2.0925559997558594, 0.4207000136375427),
    ),
}


@pytest.mark.parametrize(("dataset", "architecture", "preset"), sorted(INITIAL_WEIGHTS))
def test_initial_weights_of_seed_0_are_those_of_the_former_classes(
    dataset: str, architecture: str, preset: str
) -> None:
    datamodule = REGISTRIES.datasets.get(dataset)
    torch.manual_seed(0)
    model = REGISTRIES.architectures.get(architecture)(datamodule.input_shape(), datamodule.num_classes(), None, preset)
    state = model.network.state_dict()
    assert list(state) == list(INITIAL_WEIGHTS[(dataset, architecture, preset)])
    for name, (total, magnitude, first) in INITIAL_WEIGHTS[(dataset, architecture, preset)].items():
        weights = state[name].double()
        figures = (float(weights.sum()), float(weights.abs().sum()), float(weights.flatten()[0]))
        assert figures == pytest.approx((total, magnitude, first), rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize(("dataset", "architecture", "dropout"), sorted(STATE_KEYS))
def test_state_dict_keys_are_those_of_the_former_classes(dataset: str, architecture: str, dropout: bool) -> None:
    datamodule = REGISTRIES.datasets.get(dataset)
    model = REGISTRIES.architectures.get(architecture)(
        datamodule.input_shape(), datamodule.num_classes(), None, "keras", dropout=0.25 if dropout else 0.0
    )
    state = model.network.state_dict()
    assert [(key, tuple(value.shape)) for key, value in state.items()] == STATE_KEYS[(dataset, architecture, dropout)]


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=[pytest.mark.slow] if name != "net_1" else []) for name in RUNS]
)
def test_a_tiny_run_trains_to_the_figures_of_the_former_classes(name: str, tmp_path) -> None:
    architecture, settings, directory, history, (test_loss, test_accuracy) = RUNS[name]
    data_dir = real_data_dir("mnist.npz")
    result = cnnkit.run(
        "mnist", architecture, subset=512, epochs=1, out=tmp_path, data_dir=data_dir, quiet=True,
        accelerator="cpu", **settings,
    )  # fmt: skip
    assert result.dir.name == directory
    assert {key: values[0] for key, values in result.history.items() if key in history} == pytest.approx(
        history, abs=1e-5
    )
    assert (result.test_loss, result.test_accuracy) == pytest.approx((test_loss, test_accuracy), abs=1e-5)
