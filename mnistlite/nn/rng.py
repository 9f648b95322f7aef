"""Explicit randomness: every random draw in mnistlite comes from a Generator made here."""
from __future__ import annotations

import numpy as np


def as_generator(seed) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from an int seed, a Generator (returned as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ValueError(f"seed must be a non-negative int, a numpy Generator or None, got {seed!r}")
