"""Plugin: the `convnet` family and its presets (the assignment's two networks among them), registered as data."""

from cnnkit import ReaderInfo, RegisterCallback, convnet, hookimpl

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
CONVNET_READER = ReaderInfo(
    display_name={"en": "ConvNet", "es": "ConvNet"},
    summary={
        "en": "A network of the convnet family, described by its table: stages of 3 × 3 convolutions, how each "
        "stage downsamples, their padding, normalization and activation, and a dense or global-average-pool head.",
        "es": "Una red de la familia convnet, descrita por su tabla: etapas de convoluciones de 3 × 3, cómo reduce "
        "cada etapa, su relleno, normalización y activación, y una cabeza densa o de pooling promedio global.",
    },
)
KERAS_CIFAR10_READER = ReaderInfo(
    display_name={"en": "Keras CIFAR-10 CNN", "es": "CNN de Keras para CIFAR-10"},
    common_name={"en": "Keras CIFAR-10 CNN", "es": "CNN de Keras para CIFAR-10"},
    short_name="keras_cifar10",
    summary={
        "en": "The CNN of Keras' CIFAR-10 example: two stages of two 3 × 3 convolutions (32 and 64 filters, the "
        "second of each without padding), each followed by 2 × 2 max pooling and dropout 0.25, then a dense layer of "
        "512 units with dropout 0.5 and a softmax output.",
        "es": "La CNN del ejemplo de CIFAR-10 de Keras: dos etapas de dos convoluciones de 3 × 3 (32 y 64 filtros, "
        "la segunda de cada una sin relleno), cada una seguida de max-pooling de 2 × 2 y dropout 0,25, luego una capa "
        "densa de 512 unidades con dropout 0,5 y una salida softmax.",
    },
    citation="Chollet, F. et al. (2015). Keras (its example examples/cifar10_cnn.py). https://keras.io.",
    cite_as="Chollet et al., 2015",
)
VGG_BN_GAP_READER = ReaderInfo(
    display_name={
        "en": "VGG-style CNN with batch norm (vgg_bn_gap)",
        "es": "CNN de estilo VGG con batch norm (vgg_bn_gap)",
    },
    common_name={
        "en": "VGG-style CNN with batch norm (vgg_bn_gap)",
        "es": "CNN de estilo VGG con batch norm (vgg_bn_gap)",
    },
    short_name="vgg_bn_gap",
    summary={
        "en": "Three VGG-style stages of two 3 × 3 convolutions (32, 64 and 128 filters, “same” padding), each "
        "convolution followed by batch normalization and ReLU and each stage by 2 × 2 max pooling; global average "
        "pooling and a softmax output replace the dense layers.",
        "es": "Tres etapas de estilo VGG de dos convoluciones de 3 × 3 (32, 64 y 128 filtros, relleno «same»), cada "
        "convolución seguida de batch normalization y ReLU y cada etapa de max-pooling de 2 × 2; un pooling promedio "
        "global y una salida softmax sustituyen a las capas densas.",
    },
    citation="Ioffe, S. & Szegedy, C. (2015). Batch normalization: Accelerating deep network training by reducing "
    "internal covariate shift. *ICML*, 448–456.",
    cite_as="Ioffe & Szegedy, 2015",
)

# The family's presets: each a table of the family (see docs/plugins.md, "The convnet family").
POOLING_CNN = convnet(stages=[[32, 64]], downsample="maxpool", head=[128])
STRIDED_CNN = convnet(stages=[[32, 64]], downsample="stride", head=[128])
KERAS_CIFAR10 = convnet(
    stages=[[32, 32], [64, 64]],
    padding=[["same", "valid"], ["same", "valid"]],
    downsample="maxpool",
    head=[512],
    dropout={"stages": 0.25, "head": 0.5},
)
VGG_BN_GAP = convnet(stages=[[32, 32], [64, 64], [128, 128]], norm="batch", downsample="maxpool", head="gap")


@hookimpl
def cnnkit_register_architectures(register: RegisterCallback) -> None:
    register(
        "convnet",
        convnet(),
        description='the convnet family, described by --arch \'{ stages = [[32, 64]], downsample = "maxpool", '
        "head = [128] }' (keys: stages, downsample, padding, norm, activation, residual, head, dropout)",
        reader=CONVNET_READER,
    )
    register(
        "pooling_cnn",
        POOLING_CNN,
        aliases=("net_1",),
        description="net_1: Conv(32,3x3) - Conv(64,3x3) - MaxPool(2x2) - Dense(128) - Dense(classes); "
        "convnet { stages = [[32, 64]] }",
        reader=POOLING_READER,
    )
    register(
        "strided_cnn",
        STRIDED_CNN,
        aliases=("net_2",),
        description="net_2: Conv(32,3x3) - Conv(64,3x3, stride 2) - Dense(128) - Dense(classes), no pooling; "
        'convnet { stages = [[32, 64]], downsample = "stride" }',
        reader=STRIDED_READER,
    )
    register(
        "keras_cifar10",
        KERAS_CIFAR10,
        description="the Keras CIFAR-10 example CNN (1,250,858 parameters on CIFAR-10): convnet { stages = [[32, 32], "
        '[64, 64]], padding = [["same", "valid"], ["same", "valid"]], head = [512], '
        "dropout = { stages = 0.25, head = 0.5 } }",
        reader=KERAS_CIFAR10_READER,
    )
    register(
        "vgg_bn_gap",
        VGG_BN_GAP,
        description="three stages of two 3x3 convs (32, 64, 128) with batch norm and 2x2 max pooling, "
        'a global-average-pool head: convnet { stages = [[32, 32], [64, 64], [128, 128]], norm = "batch", '
        'head = "gap" }',
        reader=VGG_BN_GAP_READER,
    )
