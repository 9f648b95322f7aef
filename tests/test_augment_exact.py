"""The augmentation's fast paths give the bits of the plain numpy they replace (np.pad, sum over taps,
the full-grid coordinate products, int32 gathers): a fit's weights do not depend on which ran."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from mnistlite.images import augment as A

SIDE = A.SIDE


def slow_shift(x, k, rng):
    n = x.shape[0]
    padded = np.pad(x.reshape(n, SIDE, SIDE), ((0, 0), (k, k), (k, k)))
    windows = sliding_window_view(padded, (SIDE, SIDE), axis=(1, 2))
    dy, dx = rng.integers(0, 2 * k + 1, size=(2, n))
    return windows[np.arange(n), dy, dx].reshape(n, SIDE * SIDE)


def slow_affine(x, matrices, offsets):
    n, w = x.shape[0], SIDE + 2
    m = matrices.astype(np.float32)
    o = offsets.astype(np.float32) + np.float32(A._C + 1)
    sy = m[:, 0, 0, None] * A._GY + m[:, 0, 1, None] * A._GX + o[:, 0, None]
    sx = m[:, 1, 0, None] * A._GY + m[:, 1, 1, None] * A._GX + o[:, 1, None]
    sy, sx = np.clip(sy, 0, SIDE + 0.999), np.clip(sx, 0, SIDE + 0.999)
    by, bx = np.floor(sy), np.floor(sx)
    fy, fx = sy - by, sx - bx
    idx = by.astype(np.int32) * w + bx.astype(np.int32) + (np.arange(n, dtype=np.int32) * (w * w))[:, None]
    flat = np.pad(x.reshape(n, SIDE, SIDE), ((0, 0), (1, 1), (1, 1))).ravel()
    top, right = np.take(flat, idx), np.take(flat[1:], idx)
    top = top + (right - top) * fx
    bot, right = np.take(flat[w:], idx), np.take(flat[w + 1:], idx)
    bot = bot + (right - bot) * fx
    return top + (bot - top) * fy


def slow_filter3(x, op):
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    rows = op(op(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
    return op(op(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def slow_blur(x, kind):
    p = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    if kind == 0:
        return sum(p[:, 1 + dy:SIDE + 1 + dy, 1 + dx:SIDE + 1 + dx]
                   for dy in (0, 1, 2) for dx in (0, 1, 2)) / 9
    dy, dx = ((0, 1), (1, 0), (1, 1), (1, -1))[kind - 1]
    streak = sum(p[:, 2 + k * dy:SIDE + 2 + k * dy, 2 + k * dx:SIDE + 2 + k * dx] for k in range(-2, 3))
    return streak / 5 * 1.4


def images(seed, n):
    """Digit-like float32 (n, 784) in [0, 1]: sparse ink, some pixels exactly 0 or 1."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, SIDE * SIDE), dtype=np.float32)
    x[x < 0.7] = 0
    x[x > 0.95] = 1
    return x


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), k=st.integers(1, 3))
def test_shift_matches_np_pad(seed, n, k):
    x = images(seed, n)
    assert np.array_equal(A.random_shift(x, k, np.random.default_rng(seed)),
                          slow_shift(x, k, np.random.default_rng(seed)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
def test_affine_filters_and_blur_match_the_plain_versions(seed, n):
    x = images(seed, n)
    rng = np.random.default_rng(seed)
    mats = rng.normal(1, 0.4, (n, 2, 2))
    offsets = rng.normal(0, 3, (n, 2)).astype(np.float32)
    assert np.array_equal(A.affine(x, mats, offsets), slow_affine(x, mats, offsets))
    img = x.reshape(n, SIDE, SIDE)
    for op in (np.maximum, np.minimum):
        assert np.array_equal(A._filter3(img, op), slow_filter3(img, op))
    for kind in range(5):
        assert np.array_equal(A._blur(img, kind, rng), slow_blur(img, kind))
