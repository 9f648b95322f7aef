"""Training-time augmentation of 28x28 digits, per batch, vectorised and seeded.

``random_shift`` is the +-k pixel translation; ``Augment`` adds what people's digits do that MNIST's
do not: small rotations, shear and scale changes, thicker and thinner strokes, blur, and clutter
(lines, dots, zigzags, speckles) around the digit. Every draw comes from the generator passed in,
so the same seed gives the same batches. Labels are never touched.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SIDE = 28
_C = (SIDE - 1) / 2
# output pixel coordinates (y, x) about the centre, (784,) each
_GY, _GX = np.mgrid[0:SIDE, 0:SIDE].reshape(2, -1).astype(np.float32) - np.float32(_C)


def _pad(x, k: int):
    """float32 (n, h, w) -> (n, h + 2k, w + 2k) with a zero border: np.pad's result without its
    per-call cost, which is most of the time on one batch."""
    n, h, w = x.shape
    p = np.zeros((n, h + 2 * k, w + 2 * k), x.dtype)
    p[:, k:k + h, k:k + w] = x
    return p


def random_shift(x, max_shift: int, rng: np.random.Generator, side: int = 28, out=None):
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift], filling with 0.

    x: (n, side*side) float32 -> (n, side*side) float32 (into ``out`` when given). Vectorized: one
    pad and one gather for the whole batch.
    """
    if max_shift == 0:
        return x
    n = x.shape[0]
    k = int(max_shift)
    padded = _pad(x.reshape(n, side, side), k)
    windows = sliding_window_view(padded, (side, side), axis=(1, 2))  # (n, 2k+1, 2k+1, side, side)
    dy, dx = rng.integers(0, 2 * k + 1, size=(2, n))
    shifted = windows[np.arange(n), dy, dx].reshape(n, side * side)
    if out is None:
        return shifted
    out[...] = shifted
    return out


def affine(x, matrices, offsets):
    """Warp each image by its own affine map, bilinear, zero outside.

    x: float32 (n, 784) in [0, 1]; matrices (n, 2, 2) map output (y, x) about the centre to input
    coordinates; offsets (n, 2) are added (pixels). Returns a new float32 (n, 784).
    """
    n, w = x.shape[0], SIDE + 2
    m = matrices.astype(np.float32)
    o = offsets.astype(np.float32) + np.float32(_C + 1)
    sy = m[:, 0, 0, None] * _GY                   # source (y, x) in the padded image
    t = m[:, 0, 1, None] * _GX
    sy += t
    sy += o[:, 0, None]
    sx = np.multiply(m[:, 1, 0, None], _GY)
    np.multiply(m[:, 1, 1, None], _GX, out=t)
    sx += t
    sx += o[:, 1, None]
    np.clip(sy, 0, SIDE + 0.999, out=sy)          # the 1-pixel zero pad catches everything outside
    np.clip(sx, 0, SIDE + 0.999, out=sx)
    by, bx = np.floor(sy), np.floor(sx, out=t)
    sy -= by                                      # now the fractional parts
    sx -= bx
    idx = by.astype(np.int32)
    idx *= w
    idx += bx.astype(np.int32)
    idx += (np.arange(n, dtype=np.int32) * (w * w))[:, None]
    # np.take converts indices to intp on every call unless they already are; "wrap" skips the bounds
    # check's error path (every index is in range) and is the cheapest mode
    idx = idx.astype(np.intp)
    flat = _pad(x.reshape(n, SIDE, SIDE), 1).ravel()
    # The four neighbours are gathered from offset views of one array, and each pair is blended as
    # a + f * (b - a), which needs no (1 - f) arrays.
    top, right = np.take(flat, idx, mode="wrap"), np.take(flat[1:], idx, mode="wrap")
    right -= top
    right *= sx
    top += right
    bot, right = np.take(flat[w:], idx, mode="wrap"), np.take(flat[w + 1:], idx, mode="wrap")
    right -= bot
    right *= sx
    bot += right
    bot -= top
    bot *= sy
    top += bot
    return top


def _filter3(x, op):
    """3x3 max (op=np.maximum) or min filter of float32 (n, 28, 28), zero outside."""
    p = _pad(x, 1)
    rows = op(p[:, :, :-2], p[:, :, 1:-1])
    op(rows, p[:, :, 2:], out=rows)
    out = op(rows[:, :-2], rows[:, 1:-1])
    return op(out, rows[:, 2:], out=out)


def _blur(x, kind, rng):
    """Box blur: 3x3 (kind 0) or a 5-tap motion streak along one of four directions (kinds 1-4)."""
    p = _pad(x, 2)
    if kind == 0:
        taps = [p[:, 1 + dy:SIDE + 1 + dy, 1 + dx:SIDE + 1 + dx] for dy in (0, 1, 2) for dx in (0, 1, 2)]
    else:
        dy, dx = ((0, 1), (1, 0), (1, 1), (1, -1))[kind - 1]
        taps = [p[:, 2 + k * dy:SIDE + 2 + k * dy, 2 + k * dx:SIDE + 2 + k * dx] for k in range(-2, 3)]
    acc = taps[0] + taps[1]   # summed left to right into one buffer: the same sums as sum(taps)
    for t in taps[2:]:
        acc += t
    if kind == 0:
        acc /= 9
        return acc
    acc /= 5
    acc *= 1.4
    return acc


def clutter_bank(n: int, rng: np.random.Generator) -> np.ndarray:
    """float32 (n, 784) in [0, 1] of clutter to lay over digits: straight, dotted and zigzag lines,
    specks and blots, drawn with Pillow once per fit."""
    from PIL import Image, ImageDraw

    out = np.empty((n, SIDE * SIDE), np.float32)
    for i in range(n):
        im = Image.new("L", (SIDE * 2, SIDE * 2), 0)   # drawn at 2x, then averaged: antialiased
        d = ImageDraw.Draw(im)
        kind = i % 4
        p0, p1 = rng.uniform(0, 56, 2), rng.uniform(0, 56, 2)
        if kind == 0 and i % 8 == 0:   # a line across the whole field, mostly upright (a ruled line, a fold)
            x0 = rng.uniform(8, 48)
            p0, p1 = np.array([x0, 0.0]), np.array([x0 + rng.uniform(-8, 8), 56.0])
            if i % 16 == 0:
                p0, p1 = p0[::-1], p1[::-1]
        if kind == 0:
            d.line([tuple(p0), tuple(p1)], fill=255, width=int(rng.integers(2, 4)))
        elif kind == 1:
            for t in np.linspace(0, 1, int(rng.integers(6, 14))):
                x, y = p0 + t * (p1 - p0)
                r = rng.uniform(1.0, 2.0)
                d.ellipse([x - r, y - r, x + r, y + r], fill=255)
        elif kind == 2:
            pts, ang = [tuple(rng.uniform(8, 48, 2))], rng.uniform(0, 2 * np.pi)
            for j in range(int(rng.integers(3, 7))):
                a = ang + (0.9 if j % 2 else -0.9)
                pts.append((pts[-1][0] + 14 * np.cos(a), pts[-1][1] + 14 * np.sin(a)))
            d.line(pts, fill=255, width=2)
        else:
            for _ in range(int(rng.integers(3, 25))):
                x, y = rng.uniform(0, 56, 2)
                r = rng.uniform(0.8, 2.5)
                d.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.integers(128, 256)))
        a = np.asarray(im, np.float32).reshape(SIDE, 2, SIDE, 2).mean(axis=(1, 3)) / 255
        out[i] = a.ravel()
    return out


def has_margin(x, frame_ink: float = 0.5):
    """(n,) bool: which images of float32 (n, 784) in [0, 1] have under ``frame_ink`` pixels' worth of ink
    on their outermost pixel ring, i.e. a blank margin around what is drawn."""
    img = x.reshape(-1, SIDE, SIDE)
    ring = img[:, [0, -1]].sum(axis=(1, 2)) + img[:, 1:-1, [0, -1]].sum(axis=(1, 2))
    return ring < frame_ink


@dataclass(frozen=True)
class Augment:
    """How much of each distortion a batch gets; ``p`` is the share of images distorted at all.

    rotate (degrees), shear and scale (relative) are maxima of uniform draws; thick, thin, blur
    clutter and edges (outline only) are the probabilities of those per distorted image. The
    distortions model a mark on paper, so only images with a blank margin are distorted: one with
    ``frame_ink`` or more ink (in pixels' worth) on its outermost pixel ring fills its frame (a
    garment, a crop of a photo), would be cut by a warp, and passes through unchanged.
    """
    p: float = 0.5
    rotate: float = 15.0
    shear: float = 0.25
    scale: float = 0.15
    thick: float = 0.2
    thin: float = 0.1
    blur: float = 0.15
    clutter: float = 0.15
    edges: float = 0.05
    bank: int = 1024
    frame_ink: float = 0.5

    def __call__(self, x, rng: np.random.Generator, bank=None):
        """float32 (n, 784) in [0, 1] -> a new distorted float32 (n, 784) in [0, 1]; same order."""
        n = x.shape[0]
        out = x.copy()
        sel = np.flatnonzero((rng.random(n) < self.p) & has_margin(x, self.frame_ink))
        m = len(sel)
        if m == 0:
            return out
        a = np.deg2rad(rng.uniform(-self.rotate, self.rotate, m))
        sh = rng.uniform(-self.shear, self.shear, m)
        sc = np.exp(rng.uniform(-self.scale, self.scale, (m, 2)))
        c, s = np.cos(a), np.sin(a)
        # output -> input map: rotation, then shear along x, then per-axis scale
        mats = np.empty((m, 2, 2))
        mats[:, 0, 0], mats[:, 0, 1] = c / sc[:, 0], (-s + sh * c) / sc[:, 0]
        mats[:, 1, 0], mats[:, 1, 1] = s / sc[:, 1], (c + sh * s) / sc[:, 1]
        y = affine(x[sel], mats, np.zeros((m, 2), np.float32)).reshape(m, SIDE, SIDE)
        u = rng.random((4, m))
        thick = u[0] < self.thick
        thin = (u[0] >= self.thick) & (u[0] < self.thick + self.thin)
        if thick.any():
            y[thick] = _filter3(y[thick], np.maximum)
        if thin.any():
            y[thin] = np.maximum(_filter3(y[thin], np.minimum), 0.5 * y[thin])
        edges = u[3] < self.edges
        if edges.any():   # outline only: the morphological gradient, strengthened
            e = y[edges]
            y[edges] = np.minimum((_filter3(e, np.maximum) - _filter3(e, np.minimum)) * 1.5, 1)
        blur = u[1] < self.blur
        if blur.any():
            kinds = rng.integers(0, 5, int(blur.sum()))
            idx = np.flatnonzero(blur)
            for k in range(5):
                if (kinds == k).any():
                    y[idx[kinds == k]] = _blur(y[idx[kinds == k]], k, rng)
        y = y.reshape(m, SIDE * SIDE)
        clutter = np.flatnonzero(u[2] < self.clutter)
        if len(clutter) and bank is not None:
            pick = bank[rng.integers(0, len(bank), len(clutter))]
            strength = rng.uniform(0.5, 1.0, (len(clutter), 1)).astype(np.float32)
            y[clutter] = np.maximum(y[clutter], pick * strength)
        np.clip(y, 0, 1, out=y)
        out[sel] = y
        return out


def training_hook(p: float, shift: int, rng: np.random.Generator):
    """``MLP.fit``'s batch hook for 28x28 digits: distort a share ``p`` of each batch (``Augment``), then
    shift every image by up to ``shift`` pixels. Labels pass through. None when both are 0.

    The clutter bank is drawn from ``rng`` now, once per fit.
    """
    if not p and not shift:
        return None
    distort = Augment(p=float(p)) if p else None
    bank = clutter_bank(distort.bank, rng) if distort else None

    def hook(xb, yb, rng):
        if distort:
            xb = distort(xb, rng, bank)
        if shift:
            xb = random_shift(xb, shift, rng)
        return xb, yb
    return hook
