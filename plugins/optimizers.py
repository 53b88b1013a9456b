"""Plugin: optimizers with their Keras and PyTorch defaults (DESIGN.md lists the Keras ones)."""

from cnnkit import OptimizerSpec, RegisterCallback, hookimpl

# Keras 3 defaults. Keras' epsilon is 1e-7 throughout; PyTorch's defaults come from the classes themselves.
OPTIMIZERS = {
    "adam": (
        OptimizerSpec("torch.optim.Adam", keras={"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7}),
        "Adam (Kingma & Ba, 2015)",
    ),
    "adagrad": (
        OptimizerSpec("torch.optim.Adagrad", keras={"lr": 1e-3, "initial_accumulator_value": 0.1, "eps": 1e-7}),
        "Adagrad (Duchi et al., 2011)",
    ),
    "adadelta": (
        OptimizerSpec("torch.optim.Adadelta", keras={"lr": 1e-3, "rho": 0.95, "eps": 1e-7}),
        "Adadelta (Zeiler, 2012); Keras' lr is 1e-3, the paper's (and PyTorch's) 1.0",
    ),
    "sgd": (
        OptimizerSpec("torch.optim.SGD", keras={"lr": 1e-2, "momentum": 0.0}),
        "plain stochastic gradient descent",
    ),
    "rmsprop": (
        OptimizerSpec("torch.optim.RMSprop", keras={"lr": 1e-3, "alpha": 0.9, "eps": 1e-7}),
        "RMSprop (Tieleman & Hinton, 2012)",
    ),
}


@hookimpl
def cnnkit_register_optimizers(register: RegisterCallback) -> None:
    for name, (spec, description) in OPTIMIZERS.items():
        register(name, spec, description=description)
