"""Plugin: the training-set augmentations (`--augment flip,crop,cutout`)."""

from cnnkit import ReaderInfo, RegisterCallback, hookimpl

SHORT_NAMES = {"flip": {"en": "flip", "es": "volteo"}, "crop": {"en": "crop", "es": "recorte"}}  # in labels
AUGMENTATIONS = {
    "flip": (
        "random horizontal flip (probability 1/2)",
        {"en": "random horizontal flips (probability 1/2)", "es": "volteos horizontales aleatorios (probabilidad 1/2)"},
        "random_flip",
    ),
    "crop": (
        "random crop of the image padded by 4 pixels",
        {
            "en": "random crops of the image padded by 4 pixels",
            "es": "recortes aleatorios de la imagen rellenada con 4 píxeles",
        },
        "random_crop",
    ),
    "cutout": (
        "cutout: one blank square of a quarter of the image side (DeVries & Taylor, 2017)",
        {
            "en": "cutout, one blank square of a quarter of the image side",
            "es": "cutout, un cuadrado en blanco de un cuarto del lado de la imagen",
        },
        "cutout",
    ),
}
CUTOUT_CITATION = (
    "DeVries, T. & Taylor, G. W. (2017). Improved regularization of convolutional neural networks with cutout. "
    "arXiv:1708.04552."
)


@hookimpl
def cnnkit_register_augmentations(register: RegisterCallback) -> None:
    for name, (description, words, function) in AUGMENTATIONS.items():
        cited = name == "cutout"
        reader = ReaderInfo(
            display_name=words,
            short_name=SHORT_NAMES.get(name, ""),
            citation=CUTOUT_CITATION if cited else "",
            cite_as="DeVries & Taylor, 2017" if cited else "",
        )
        register(name, f"cnnkit_plugins.image_ops:{function}", description=description, reader=reader)
