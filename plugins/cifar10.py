"""Plugin: CIFAR-10 small colour images (Krizhevsky, 2009) - its facts and the files it can be read from."""

from cnnkit import CifarBatchesSource, ImageSetSpec, NpzSource, ReaderInfo, RegisterCallback, hookimpl

CIFAR10_SPEC = ImageSetSpec(
    "cifar10",
    height=32,
    width=32,
    channels=3,
    num_classes=10,
    train_count=50_000,
    test_count=10_000,
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
)
# Keras' cifar10.npz, else the official python batches (folder or tar.gz; downloaded with its md5).
CIFAR10_SOURCES = (NpzSource("cifar10.npz"), CifarBatchesSource())
CIFAR10_READER = ReaderInfo(
    display_name="CIFAR-10",
    official_files={"cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
    class_names={
        "es": ("avión", "automóvil", "pájaro", "gato", "ciervo", "perro", "rana", "caballo", "barco", "camión"),
    },
    summary={
        "en": "CIFAR-10 holds 60,000 colour 32 × 32 photographs in ten classes of animals and vehicles "
        "(6,000 per class), 50,000 for training and 10,000 for testing.",
        "es": "CIFAR-10 reúne 60.000 fotografías en color de 32 × 32 píxeles de diez clases de animales y vehículos "
        "(6.000 por clase), 50.000 de entrenamiento y 10.000 de prueba.",
    },
    citation="Krizhevsky, A. (2009). *Learning multiple layers of features from tiny images*. Technical report, "
    "University of Toronto.",
    cite_as="Krizhevsky, 2009",
)


@hookimpl
def cnnkit_register_datasets(register: RegisterCallback) -> None:
    register(
        "cifar10",
        "cnnkit_plugins.datamodules:CIFAR10DataModule",
        aliases=("cifar-10",),
        description="CIFAR-10: 50,000 train + 10,000 test colour 32x32 images, 10 classes",
        reader=CIFAR10_READER,
    )
