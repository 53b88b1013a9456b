"""The hook implementations of cnnkit-fashion, plus the dataset's facts and the study.

cnnkit imports this module for every command (even `cnnkit list`), so it stays cheap: the datamodule and the
network are registered as "module:attr" strings and imported only when a run needs them.
"""

from __future__ import annotations

from pathlib import Path

from cnnkit import IdxSource, ImageSetSpec, ReaderInfo, RegisterCallback, RunSpec, Study, hookimpl

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

# What the report tells its reader about the dataset and the network, and what it cites for them.
FASHION_MNIST_READER = ReaderInfo(
    display_name="Fashion-MNIST",
    summary={
        "en": "Fashion-MNIST (Zalando) holds 70,000 greyscale 28 × 28 images of clothing, shoes and bags in ten "
        "classes, 60,000 for training and 10,000 for testing: a drop-in replacement for MNIST that is harder to learn.",
        "es": "Fashion-MNIST (Zalando) reúne 70.000 imágenes en escala de grises de 28 × 28 píxeles de ropa, calzado "
        "y bolsos en diez clases, 60.000 de entrenamiento y 10.000 de prueba: un sustituto directo de MNIST, más "
        "difícil de aprender.",
    },
    class_names={  # the spec's English names are the ones results record; the report shows these in Spanish
        "es": (
            "camiseta/top",
            "pantalón",
            "jersey",
            "vestido",
            "abrigo",
            "sandalia",
            "camisa",
            "zapatilla",
            "bolso",
            "botín",
        )
    },
    citation="Xiao, H., Rasul, K. & Vollgraf, R. (2017). Fashion-MNIST: a novel image dataset for benchmarking "
    "machine learning algorithms. arXiv:1708.07747.",
    cite_as="Xiao et al., 2017",
)
LENET5_READER = ReaderInfo(
    display_name="LeNet-5",
    summary={
        "en": "LeNet-5, the classic convolutional network of LeCun et al.: two 5 × 5 convolutions with 6 and 16 "
        "filters, each followed by 2 × 2 pooling, then dense layers of 120 and 84 units; here with ReLU and "
        "max-pooling, and 2-pixel padding for 28 × 28 inputs.",
        "es": "LeNet-5, la red convolucional clásica de LeCun et al.: dos convoluciones de 5 × 5 con 6 y 16 filtros, "
        "cada una seguida de un pooling de 2 × 2, y después capas densas de 120 y 84 unidades; aquí con ReLU y "
        "max-pooling, y un relleno de 2 píxeles para entradas de 28 × 28.",
    },
    citation="LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-based learning applied to document "
    "recognition. *Proceedings of the IEEE*, 86(11), 2278–2324.",
    cite_as="LeCun et al., 1998",
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
        reader=FASHION_MNIST_READER,
    )


@hookimpl
def cnnkit_register_architectures(register: RegisterCallback) -> None:
    register(
        "lenet5",
        "cnnkit_fashion.lenet:LeNet5",
        aliases=("lenet",),
        description="LeNet-5 for 28x28: Conv(6,5x5,pad 2) - MaxPool - Conv(16,5x5) - MaxPool - Dense(120) - Dense(84)",
        reader=LENET5_READER,
    )


@hookimpl
def cnnkit_register_studies(register: RegisterCallback) -> None:
    register("fashion", FASHION_STUDY, description=FASHION_STUDY.description)
