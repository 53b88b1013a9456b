"""Plugin: the MNIST handwritten digits (LeCun et al., 1998) - its facts and the files it can be read from."""

from cnnkit import IdxSource, ImageSetSpec, NpzSource, ReaderInfo, RegisterCallback, hookimpl

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
MNIST_READER = ReaderInfo(
    display_name="MNIST",
    official_files={"mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"},  # Keras' copy
    summary={
        "en": "MNIST is a database of handwritten digits: 70,000 greyscale 28 × 28 images of the digits 0 to 9, "
        "size-normalised and centred, 60,000 for training and 10,000 for testing.",
        "es": "MNIST es una base de datos de dígitos manuscritos: 70.000 imágenes en escala de grises de 28 × 28 "
        "píxeles de los dígitos 0 a 9, normalizadas en tamaño y centradas, 60.000 de entrenamiento y 10.000 de prueba.",
    },
    citation="LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-based learning applied to document "
    "recognition. *Proceedings of the IEEE*, 86(11), 2278–2324.",
    cite_as="LeCun et al., 1998",
)


@hookimpl
def cnnkit_register_datasets(register: RegisterCallback) -> None:
    register(
        "mnist",
        "cnnkit_plugins.datamodules:MNISTDataModule",
        description="MNIST handwritten digits: 60,000 train + 10,000 test grey 28x28 images, 10 classes",
        reader=MNIST_READER,
    )
