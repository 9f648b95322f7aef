"""Stroke width of a digit's ink and bringing it towards MNIST's width/size ratio."""
from __future__ import annotations

import numpy as np

from .morphology import dilate

STROKE = 0.10       # MNIST's stroke width over the digit's longest side (training-set median of stroke_width)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a bool (h, w) mask: twice the area over the number of ink/paper edges."""
    area = np.count_nonzero(mask)
    if not area:
        return 0.0
    p = np.pad(mask, 1)
    edges = np.count_nonzero(p[1:] != p[:-1]) + np.count_nonzero(p[:, 1:] != p[:, :-1])
    return 2.0 * area / max(edges, 1)


def normalise_stroke(box: np.ndarray) -> np.ndarray:
    """Thicken (or thin) the strokes of a white-on-black uint8 crop towards MNIST's width/size ratio.

    Only strokes well outside MNIST's range change: thinner than 0.6x or thicker than 1.8x STROKE of
    the crop's longest side. The crop keeps its shape; the cost does not grow with the radius.
    """
    size = max(box.shape)
    sw = stroke_width(box > 127)
    target = STROKE * size
    if sw <= 0 or 0.6 * target <= sw <= 1.8 * target:
        return box
    r = int(round(abs(target - sw) / 2))
    if r == 0:
        return box
    if sw < target:
        return dilate(box, r)
    return 255 - dilate(255 - box, r, edge=True)
