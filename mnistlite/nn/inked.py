"""The first layer of a few rows (a service request) reads only the weight rows of inked pixels: a digit
inks about a fifth of its pixels, and for a row or a few the product is bound by reading the weights."""
from __future__ import annotations

import numpy as np

_INV255 = np.float32(1.0 / 255.0)


def inked_product(x, W):
    """x @ W over the columns of x that are not all zero: x float32 (n, n_in), W (n_in, n_out)."""
    cols = x[0].nonzero()[0] if len(x) == 1 else np.flatnonzero(x.any(axis=0))
    if 2 * len(cols) > x.shape[1]:
        return x @ W
    return x.take(cols, axis=1) @ W.take(cols, axis=0)   # take: what fancy indexing gives, faster


def pixel_product(pixels, W):
    """``inked_product`` of one image's model input, from its uint8 pixels (n_in,) -> (1, n_out) float32: the
    same values (pixels / 255 in float32, as ``to_float`` makes them) without making the whole float row."""
    cols = pixels.nonzero()[0]
    if 2 * len(cols) > len(pixels):
        x = pixels.astype(np.float32)
        x *= _INV255
        return x[None] @ W
    return (pixels.take(cols)[None] * _INV255) @ W.take(cols, axis=0)
