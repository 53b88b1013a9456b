"""The hook implementations of cnnkit-fashion, plus the dataset's facts and the study.

cnnkit imports this module for every command (even `cnnkit list`), so it stays cheap: the datamodule and the
network are registered as "module:attr" strings and imported only when a run needs them.
"""

from __future__ import annotations

from pathlib import Path

from cnnkit import IdxSource, ImageSetSpec, RegisterCallback, RunSpec, Study, hookimpl

# Where Debian's `dataset-fashion-mnist` package installs the four gzipped IDX files.
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_SPEC = ImageSetSpec(
    "fashion_mnist",
    height=28,
    width=28,
    channels=1,
    num_classes=10,
    train_count=60_000,
    test_count=10_000,
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)


# The official IDX files: <data dir>/FashionMNIST/raw (torchvision's layout, where downloads go, md5-checked
# against torchvision's list), else the OS package's folder; never the top level, where MNIST's files of the
# same names live.
FASHION_MNIST_SOURCES = (
    IdxSource(
        torchvision_dataset="FashionMNIST", subfolder="FashionMNIST/raw", extra_dirs=[SYSTEM_DIR], top_level=False
    ),
)

FASHION_STUDY = Study(
    name="fashion",
    description="Fashion-MNIST with LeNet-5 and the assignment's max-pooling and strided CNNs (Adam, 10 epochs)",
    runs=tuple(
        RunSpec("fashion_mnist", architecture, "adam", epochs=10, batch_size=128, val_split=0.2, preset="keras")
        for architecture in ("lenet5", "pooling_cnn", "strided_cnn")
    ),
)


@hookimpl
def cnnkit_register_datasets(register: RegisterCallback) -> None:
    register(
        "fashion_mnist",
        "cnnkit_fashion.datamodule:FashionMNISTDataModule",
        aliases=("fashion-mnist",),
        description="Fashion-MNIST (Zalando): 60,000 train + 10,000 test grey 28x28 images of clothing, 10 classes",
    )


@hookimpl
def cnnkit_register_architectures(register: RegisterCallback) -> None:
    register(
        "lenet5",
        "cnnkit_fashion.lenet:LeNet5",
        aliases=("lenet",),
        description="LeNet-5 for 28x28: Conv(6,5x5,pad 2) - MaxPool - Conv(16,5x5) - MaxPool - Dense(120) - Dense(84)",
    )


@hookimpl
def cnnkit_register_studies(register: RegisterCallback) -> None:
    register("fashion", FASHION_STUDY, description=FASHION_STUDY.description)
