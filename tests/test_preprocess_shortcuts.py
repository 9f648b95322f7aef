"""The upload path's shortcuts rest on facts about the functions they skip; these tests hold them."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlite.images import ink, preprocess


@settings(max_examples=200)
@given(st.integers(0, 2**31 - 1), st.integers(5, 64), st.integers(5, 64), st.integers(0, 255))
def test_declutter_leaves_ink_clear_of_the_outermost_pixels_alone(seed, h, w, bg):
    # _place asks declutter only when the ink box reaches the outermost pixels
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 256, (h, w), dtype=np.uint8)
    mask = rng.random((h, w)) < rng.random()
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = False, False, False, False
    assert ink.declutter(g, mask, bg) is g


@settings(max_examples=300)
@given(st.integers(0, 2**31 - 1), st.integers(1, 90), st.integers(1, 90), st.floats(0.0005, 1.0))
def test_the_ink_box_is_found_the_same_on_small_and_large_masks(seed, h, w, density):
    # small masks search bytes, large ones reduce along each axis: both the box of the True pixels
    rng = np.random.default_rng(seed)
    mask = rng.random((h, w)) < density
    mask[rng.integers(h), rng.integers(w)] = True
    rows, cols = np.nonzero(mask)
    want = (rows.min(), rows.max(), cols.min(), cols.max())
    assert preprocess._bbox(mask) == want
    assert preprocess._bbox(mask[::-1, ::-1].copy()) == (h - 1 - want[1], h - 1 - want[0],
                                                         w - 1 - want[3], w - 1 - want[2])


@settings(max_examples=200)
@given(st.integers(0, 2**31 - 1), st.integers(1, 70), st.integers(1, 70), st.booleans())
def test_the_border_median_is_the_upper_median_of_the_outermost_pixels(seed, h, w, view):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 256, (h, w), dtype=np.uint8)
    if rng.random() < 0.5:
        g[:] = rng.integers(0, 256)   # one flat level, the common upload
        g[h // 2, w // 2] = 0
    if view:   # a non-contiguous picture (a crop of a bigger one)
        g = np.pad(g, 3)[3:-3, 3:-3]
    edge = np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]]) if h > 2 and w > 2 else g.ravel()
    assert preprocess._border_median(g) == int(np.sort(edge)[edge.size // 2])
