"""Plugin: CIFAR-10 small colour images (Krizhevsky, 2009) - its facts and the files it can be read from."""

from cnnkit import CifarBatchesSource, ImageSetSpec, NpzSource, RegisterCallback, hookimpl

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


@hookimpl
def cnnkit_register_datasets(register: RegisterCallback) -> None:
    register(
        "cifar10",
        "cnnkit_plugins.datamodules:CIFAR10DataModule",
        aliases=("cifar-10",),
        description="CIFAR-10: 50,000 train + 10,000 test colour 32x32 images, 10 classes",
    )
