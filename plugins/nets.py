"""Plugin: the assignment's two networks."""

from cnnkit import ReaderInfo, RegisterCallback, hookimpl

POOLING_READER = ReaderInfo(
    display_name={"en": "Pooling CNN (net_1)", "es": "CNN con pooling (net_1)"},
    common_name={"en": "pooling CNN (net_1)", "es": "CNN con pooling (net_1)"},
    short_name="net_1",
    summary={
        "en": "Two 3 × 3 convolutions with 32 and 64 filters (ReLU, “same” padding), a 2 × 2 max-pooling layer that "
        "halves the height and width of the feature maps, a dense layer of 128 units (ReLU) and a softmax output.",
        "es": "Dos convoluciones de 3 × 3 con 32 y 64 filtros (ReLU, relleno «same»), una capa de max-pooling de "
        "2 × 2 que reduce a la mitad el alto y el ancho de los mapas de características, una capa densa de 128 "
        "unidades (ReLU) y una salida softmax.",
    },
)
STRIDED_READER = ReaderInfo(
    display_name={"en": "Strided CNN (net_2)", "es": "CNN con paso 2 (net_2)"},
    common_name={"en": "strided CNN (net_2)", "es": "CNN con paso 2 (net_2)"},
    short_name="net_2",
    summary={
        "en": "The same network without the pooling layer: its second convolution has stride 2, so it computes "
        "its output at every second position and learns its own downsampling to the same output size.",
        "es": "La misma red sin la capa de pooling: su segunda convolución tiene paso 2, de modo que calcula su "
        "salida en una de cada dos posiciones y aprende su propia reducción al mismo tamaño de salida.",
    },
    citation="Springenberg, J. T., Dosovitskiy, A., Brox, T. & Riedmiller, M. (2015). Striving for simplicity: "
    "The all convolutional net. *ICLR workshop track*. arXiv:1412.6806.",
    cite_as="Springenberg et al., 2015",
)


@hookimpl
def cnnkit_register_architectures(register: RegisterCallback) -> None:
    register(
        "pooling_cnn",
        "cnnkit_plugins.networks:PoolingCNN",
        aliases=("net_1",),
        description="net_1: Conv(32,3x3) - Conv(64,3x3) - MaxPool(2x2) - Dense(128) - Dense(classes)",
        reader=POOLING_READER,
    )
    register(
        "strided_cnn",
        "cnnkit_plugins.networks:StridedCNN",
        aliases=("net_2",),
        description="net_2: Conv(32,3x3) - Conv(64,3x3, stride 2) - Dense(128) - Dense(classes), no pooling",
        reader=STRIDED_READER,
    )
