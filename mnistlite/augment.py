"""Random translations of 28x28 images: the one augmentation the default recipe uses."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def random_shift(x, max_shift: int, rng: np.random.Generator, side: int = 28, out=None):
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift], filling with 0.

    x: (n, side*side) float32 -> (n, side*side) float32 (into ``out`` when given). Vectorized: one
    pad and one gather for the whole batch.
    """
    if max_shift == 0:
        return x
    n = x.shape[0]
    k = int(max_shift)
    padded = np.pad(x.reshape(n, side, side), ((0, 0), (k, k), (k, k)))
    windows = sliding_window_view(padded, (side, side), axis=(1, 2))  # (n, 2k+1, 2k+1, side, side)
    dy, dx = rng.integers(0, 2 * k + 1, size=(2, n))
    shifted = windows[np.arange(n), dy, dx].reshape(n, side * side)
    if out is None:
        return shifted
    out[...] = shifted
    return out
