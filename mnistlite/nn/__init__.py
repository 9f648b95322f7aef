"""The numerics: layers, losses, optimizers, the MLP and its training loop, the config.

Imports numpy and itself only; knows nothing of images, files or threads.
"""
