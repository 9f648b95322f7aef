"""Digits that fill their frame: MNIST test digits cropped to their ink box, and low-resolution scans.

Each condition has a margin twin (its name ends in "+margin"): the same digits with a blank margin
added before upscaling, so the pair shows what the cropping alone costs.
- ``crop NxI``: cropped to the ink box (no margin), upscaled N times (I: bilinear or nearest);
  the twin has 2 pixels of margin around the box first.
- ``8x8 to S``: the ink box padded to a square, scaled to 32x32 and box-averaged to 8x8 with 17 grey
  levels (the UCI optdigits way), then upscaled bilinearly to S x S; the twin adds one pixel of margin
  to the 8x8 image before upscaling by the same factor.
Every condition is white ink on black; "dark" ones are dark ink on white (inverted).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

SCALES = (2, 3, 4, 6, 8)
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}


def ink_box(d: np.ndarray) -> np.ndarray:
    """uint8 (28, 28) digit -> its crop to the pixels with any ink."""
    rows = np.flatnonzero(d.any(axis=1))
    cols = np.flatnonzero(d.any(axis=0))
    return d[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _up(a: np.ndarray, k: int, how: str) -> np.ndarray:
    h, w = a.shape
    return np.asarray(Image.fromarray(a).resize((w * k, h * k), _RESAMPLE[how]))


def crop(d: np.ndarray, k: int, how: str, margin: int = 0) -> np.ndarray:
    """The ink box (plus ``margin`` blank pixels) upscaled ``k`` times."""
    return _up(np.pad(ink_box(d), margin), k, how)


def optdigit(d: np.ndarray) -> np.ndarray:
    """uint8 (8, 8) in 0..16 as 255ths: the ink box squared, at 32x32, box-averaged 4x4, 17 levels."""
    b = ink_box(d)
    h, w = b.shape
    s = max(h, w)
    sq = np.zeros((s, s), np.uint8)
    sq[(s - h) // 2:(s - h) // 2 + h, (s - w) // 2:(s - w) // 2 + w] = b
    big = np.asarray(Image.fromarray(sq).resize((32, 32), Image.Resampling.BILINEAR)) > 127
    counts = big.reshape(8, 4, 8, 4).sum(axis=(1, 3))           # 0..16 per block
    return np.rint(counts * (255 / 16)).astype(np.uint8)


def lowres(d: np.ndarray, size: int, margin: int = 0) -> np.ndarray:
    """The 8x8 rendering (plus ``margin``) upscaled bilinearly by size // 8."""
    return _up(np.pad(optdigit(d), margin), size // 8, "bilinear")


def _variant(f, dark):
    return (lambda d, rng: 255 - f(d)) if dark else (lambda d, rng: f(d))


def kinds() -> dict:
    """name -> f(digit uint8 (28, 28), rng) -> uint8 (h, w) picture, each cropped one beside its twin."""
    out = {}
    for dark in (False, True):
        tail = " dark" if dark else ""
        for how in _RESAMPLE:
            for k in SCALES:
                out[f"crop {k}x{how[0]}{tail}"] = _variant(lambda d, k=k, how=how: crop(d, k, how), dark)
                out[f"crop {k}x{how[0]}{tail} +margin"] = _variant(
                    lambda d, k=k, how=how: crop(d, k, how, 2), dark)
        for size in (32, 64):
            out[f"8x8 to {size}{tail}"] = _variant(lambda d, s=size: lowres(d, s), dark)
            out[f"8x8 to {size}{tail} +margin"] = _variant(lambda d, s=size: lowres(d, s, 1), dark)
    return out


KINDS = kinds()
