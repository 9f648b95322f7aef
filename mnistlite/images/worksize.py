"""A picture brought to the size the ink search works at: box reductions by a whole factor.

Photos are searched for ink at no more than ``WORK`` pixels a side: the digit ends up 20 px, so nothing
is gained at full resolution, and the cost of every later step grows with the pixel count.
"""
from __future__ import annotations

import numpy as np

WORK = 384          # longest side (pixels) the ink search works at


def shrink(g: np.ndarray, limit: int = WORK) -> np.ndarray:
    """uint8 (h, w) -> float32 box-filtered by the smallest integer factor that brings it within ``limit``."""
    h, w = g.shape
    f = -(-max(h, w) // limit)
    if f == 1:
        return g.astype(np.float32)
    if f > 2:   # big pictures: Pillow's box reduction in C, without a float copy of the whole picture
        return reduce(g, f).astype(np.float32)
    h2, w2 = h // f, w // f
    return g[:h2 * f, :w2 * f].reshape(h2, f, w2, f).mean(axis=(1, 3), dtype=np.float32)


def reduce(g: np.ndarray, f: int) -> np.ndarray:
    """uint8 (h, w) -> uint8 (ceil(h / f), ceil(w / f)): means of f x f blocks (Pillow's reduce)."""
    from PIL import Image

    if g.T.flags.c_contiguous and not g.flags.c_contiguous:   # column-major: reduce the transpose
        return np.asarray(Image.fromarray(g.T).reduce(f)).T
    return np.asarray(Image.fromarray(np.ascontiguousarray(g)).reduce(f))


def to_work_size(g: np.ndarray, limit: int = WORK) -> np.ndarray:
    """uint8 (h, w) brought within ``limit`` pixels a side by box reduction; ``g`` itself if it is."""
    f = -(-max(g.shape) // limit)
    return g if f == 1 else reduce(g, f)
