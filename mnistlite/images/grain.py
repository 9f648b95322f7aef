"""The noise rule: telling pure noise (grain, specks, sensor noise; no digit in it) from a digit's ink.

``ink.clean`` asks ``is_noise`` of the ink it kept in a photo; ``to_mnist`` asks ``scattered`` of a big
picture's ink on one flat background, and of a photo's clear ink when cleaning found none. Noise they
catch comes out of preprocessing empty, so no grain is blown up to 20 px into a digit-like blob.
"""
from __future__ import annotations

import numpy as np

from .morphology import label

# The kept ink's box (pixels a side at the working size) and its share of the weighed ink, under which
# a photo holds noise, not a digit; the second is also the largest speck's share of scattered ink
NOISE = (8, 0.3)


def is_noise(keep: np.ndarray, share: float) -> bool:
    """True when the ink a photo's cleaning kept (bool (h, w) ``keep``, holding ``share`` of the ink of
    the components ``select`` weighed) is noise rather than a digit: a speck that would be blown up
    into a smooth blob (its box under NOISE[0] pixels a side at the working size), or one grain among
    many like it (under NOISE[1] of the ink). A digit is one coherent stroke that dominates its picture.
    """
    rows, cols = keep.any(axis=1).nonzero()[0], keep.any(axis=0).nonzero()[0]
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    return bool(extent < NOISE[0] or share < NOISE[1])


def scattered(mask: np.ndarray, box: tuple) -> bool:
    """True when the ink of a picture on one flat background (bool (h, w) ``mask``, its ink box
    ``box`` = (first row, last row, first col, last col)) is specks scattered over it: the box spans
    most of the picture and no connected component holds NOISE[1] of the ink (specks or grain on
    paper). Components are labelled only when the ink also reaches all four corners (a quarter of a side
    square), which a digit rarely does.
    """
    r0, r1, c0, c1 = box
    h, w = mask.shape
    if r1 - r0 + 1 < 0.8 * h or c1 - c0 + 1 < 0.8 * w:
        return False
    qh, qw = max(1, h // 4), max(1, w // 4)
    if not (mask[:qh, :qw].any() and mask[:qh, -qw:].any() and mask[-qh:, :qw].any()
            and mask[-qh:, -qw:].any()):
        return False   # labelling costs milliseconds: specks reach all four corners, a digit seldom
    lab, n = label(mask)
    if n < 10:
        return False
    sizes = np.bincount(lab[lab >= 0], minlength=n)
    return bool(sizes.max() < NOISE[1] * sizes.sum())
