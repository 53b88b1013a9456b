"""The plugins that ship with cnnkit, installed as `cnnkit_plugins` and registered through the `cnnkit`
entry-point group exactly like a third-party package's.

Each plugin module (mnist, cifar10, nets, optimizers, studies) only registers names; the heavy classes
live in `datamodules` (and, for the nets, in cnnkit.nets.layers) and are imported when a run needs them.
"""
