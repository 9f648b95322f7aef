"""Model input as arrays: uint8 pixels or float rows -> float32 rows in [0, 1]."""
from __future__ import annotations

import numpy as np

# The ufuncs' own reductions, not the numpy functions that wrap them (np.max, .any, ...): code that runs
# once per training step or upload on small arrays spends most of its time in the wrappers' Python.
amax, amin, asum, aany = np.maximum.reduce, np.minimum.reduce, np.add.reduce, np.logical_or.reduce


def to_float(images):
    """uint8 images (n, 28, 28) or (n, 784) -> float32 (n, 784) in [0, 1] (divides by 255)."""
    a = np.asarray(images)
    if a.dtype != np.uint8:
        raise ValueError(f"to_float expects uint8 pixels, got dtype {a.dtype}")
    out = a.reshape(a.shape[0], -1).astype(np.float32)
    out *= np.float32(1.0 / 255.0)
    return out


def to_model_input(x, n_inputs: int = 784):
    """Accept float (n, n_inputs) in [0, 1], uint8 (n, 28, 28)/(n, 784), or one sample; return
    float32 (n, n_inputs). Raises ValueError naming the shape or dtype that does not fit.
    """
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype == np.uint8:
        if a.ndim in (2, 3) and int(np.prod(a.shape[1:])) == n_inputs:
            return to_float(a)
        if a.size == n_inputs:
            return to_float(a.reshape(1, n_inputs))
        raise ValueError(f"uint8 input must be (n, 28, 28) or (n, {n_inputs}), got shape {a.shape}")
    if a.ndim == 2 and a.shape[1] == n_inputs:
        return a if a.dtype == np.float32 else a.astype(np.float32)
    if a.ndim == 1 and a.shape[0] == n_inputs:
        return a.reshape(1, n_inputs).astype(np.float32, copy=False)
    if a.ndim == 3 and a.shape[1] * a.shape[2] == n_inputs:
        return a.reshape(a.shape[0], n_inputs).astype(np.float32, copy=False)
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"input must be numeric, got dtype {a.dtype}")
    raise ValueError(f"input must be (n, {n_inputs}) float32 in [0, 1] or uint8 (n, 28, 28), "
                     f"got shape {a.shape}")


def to_pixels(x, side: int = 28):
    """float32 rows (n, side*side) in [0, 1] -> uint8 images (n, side, side), rounded: to_float undone."""
    return np.rint(np.asarray(x) * np.float32(255)).astype(np.uint8).reshape(-1, side, side)
