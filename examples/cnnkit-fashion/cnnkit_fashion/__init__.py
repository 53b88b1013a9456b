"""cnnkit-fashion: a cnnkit plugin adding Fashion-MNIST, LeNet-5 and the `fashion` study.

cnnkit loads `cnnkit_fashion.plugin` through the `cnnkit` entry-point group; nothing here imports torch.
"""
