"""Another population of writers, for drills: MNIST digits re-rendered with a strong forward slant.

A week published from these reads clearly worse for a model trained on MNIST, yet every image is still
an ordinary digit to the data gate: this is the field shift the weekly monitor exists to catch.
"""
from __future__ import annotations

import numpy as np

from ..images.augment import affine

WRITERS = ("mnist", "slanted")
SLANT = 0.45   # horizontal shear per pixel of height; the detector passes nearly every digit at this slant


def slanted(images, shear: float = SLANT) -> np.ndarray:
    """uint8 (n, 28, 28) digits -> the same digits sheared by ``shear`` (bilinear), uint8 (n, 28, 28)."""
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"images must be uint8 (n, 28, 28), got {x.dtype} {x.shape}")
    n = len(x)
    flat = x.reshape(n, 784).astype(np.float32) / 255
    matrix = np.repeat(np.array([[[1.0, shear], [0.0, 1.0]]], np.float32), n, axis=0)
    out = affine(flat, matrix, np.zeros((n, 2), np.float32))
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8).reshape(n, 28, 28)


def render(images, writers: str) -> np.ndarray:
    """The digits as ``writers`` ("mnist": unchanged, "slanted") would have written them."""
    if writers not in WRITERS:
        raise ValueError(f"writers must be one of {', '.join(WRITERS)}, got {writers!r}")
    return np.asarray(images) if writers == "mnist" else slanted(images)
