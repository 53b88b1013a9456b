"""Plugin: the MNIST handwritten digits (LeCun et al., 1998) - its facts and the files it can be read from."""

from cnnkit import IdxSource, ImageSetSpec, NpzSource, RegisterCallback, hookimpl

MNIST_SPEC = ImageSetSpec(
    "mnist",
    height=28,
    width=28,
    channels=1,
    num_classes=10,
    train_count=60_000,
    test_count=10_000,
    class_names=tuple(str(digit) for digit in range(10)),
)
# Keras' mnist.npz, else the official IDX files (downloaded from torchvision's mirrors, md5-checked).
MNIST_SOURCES = (NpzSource("mnist.npz"), IdxSource(torchvision_dataset="MNIST", subfolder="MNIST/raw"))


@hookimpl
def cnnkit_register_datasets(register: RegisterCallback) -> None:
    register(
        "mnist",
        "cnnkit_plugins.datamodules:MNISTDataModule",
        description="MNIST handwritten digits: 60,000 train + 10,000 test grey 28x28 images, 10 classes",
    )
