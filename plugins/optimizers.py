"""Plugin: optimizers with their Keras and PyTorch defaults (DESIGN.md lists the Keras ones)."""

from cnnkit import OptimizerSpec, ReaderInfo, RegisterCallback, hookimpl


def _reader(display_name: str, citation: str = "", cite_as: str = "") -> ReaderInfo:
    return ReaderInfo(display_name=display_name, citation=citation, cite_as=cite_as)


# Keras 3 defaults. Keras' epsilon is 1e-7 throughout; PyTorch's defaults come from the classes themselves.
OPTIMIZERS = {
    "adam": (
        OptimizerSpec("torch.optim.Adam", keras={"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7}),
        "Adam (Kingma & Ba, 2015)",
        _reader(
            "Adam",
            "Kingma, D. P. & Ba, J. (2015). Adam: A method for stochastic optimization. *International Conference on "
            "Learning Representations (ICLR)*. arXiv:1412.6980.",
            "Kingma & Ba, 2015",
        ),
    ),
    "adagrad": (
        OptimizerSpec("torch.optim.Adagrad", keras={"lr": 1e-3, "initial_accumulator_value": 0.1, "eps": 1e-7}),
        "Adagrad (Duchi et al., 2011)",
        _reader(
            "Adagrad",
            "Duchi, J., Hazan, E. & Singer, Y. (2011). Adaptive subgradient methods for online learning and "
            "stochastic optimization. *Journal of Machine Learning Research*, 12, 2121–2159.",
            "Duchi et al., 2011",
        ),
    ),
    "adadelta": (
        OptimizerSpec("torch.optim.Adadelta", keras={"lr": 1e-3, "rho": 0.95, "eps": 1e-7}),
        "Adadelta (Zeiler, 2012); Keras' lr is 1e-3, the paper's (and PyTorch's) 1.0",
        _reader(
            "Adadelta",
            "Zeiler, M. D. (2012). ADADELTA: An adaptive learning rate method. arXiv:1212.5701.",
            "Zeiler, 2012",
        ),
    ),
    "sgd": (
        OptimizerSpec("torch.optim.SGD", keras={"lr": 1e-2, "momentum": 0.0}),
        "plain stochastic gradient descent",
        _reader("SGD"),
    ),
    "rmsprop": (
        OptimizerSpec("torch.optim.RMSprop", keras={"lr": 1e-3, "alpha": 0.9, "eps": 1e-7}),
        "RMSprop (Tieleman & Hinton, 2012)",
        _reader(
            "RMSprop",
            "Tieleman, T. & Hinton, G. (2012). Lecture 6.5 - RMSprop: Divide the gradient by a running average of its "
            "recent magnitude. COURSERA: Neural Networks for Machine Learning.",
            "Tieleman & Hinton, 2012",
        ),
    ),
}


@hookimpl
def cnnkit_register_optimizers(register: RegisterCallback) -> None:
    for name, (spec, description, reader) in OPTIMIZERS.items():
        register(name, spec, description=description, reader=reader)
