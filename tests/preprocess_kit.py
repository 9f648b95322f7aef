"""Helpers of the preprocessing tests: a Pillow image as file bytes, and how alike two 28x28 digits are."""
from __future__ import annotations

import io
import itertools

import numpy as np
from PIL import Image


def save(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def shift_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Best pixel correlation of a and b over shifts of up to one pixel (CoM rounding may differ by 1)."""
    fb = b.ravel().astype(np.float64)
    return max(np.corrcoef(np.roll(a, (dy, dx), (0, 1)).ravel().astype(np.float64), fb)[0, 1]
               for dy, dx in itertools.product((-1, 0, 1), repeat=2))
