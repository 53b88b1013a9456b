"""Plugin: the assignment's two networks."""

from cnnkit import RegisterCallback, hookimpl


@hookimpl
def cnnkit_register_architectures(register: RegisterCallback) -> None:
    register(
        "pooling_cnn",
        "cnnkit_plugins.networks:PoolingCNN",
        aliases=("net_1",),
        description="net_1: Conv(32,3x3) - Conv(64,3x3) - MaxPool(2x2) - Dense(128) - Dense(classes)",
    )
    register(
        "strided_cnn",
        "cnnkit_plugins.networks:StridedCNN",
        aliases=("net_2",),
        description="net_2: Conv(32,3x3) - Conv(64,3x3, stride 2) - Dense(128) - Dense(classes), no pooling",
    )
