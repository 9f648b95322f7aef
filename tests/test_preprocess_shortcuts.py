"""The upload path's shortcuts rest on facts about the functions they skip; these tests hold them."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlite.images import ink


@settings(max_examples=200)
@given(st.integers(0, 2**31 - 1), st.integers(5, 64), st.integers(5, 64), st.integers(0, 255))
def test_declutter_leaves_ink_clear_of_the_outermost_pixels_alone(seed, h, w, bg):
    # _place asks declutter only when the ink box reaches the outermost pixels
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 256, (h, w), dtype=np.uint8)
    mask = rng.random((h, w)) < rng.random()
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = False, False, False, False
    assert ink.declutter(g, mask, bg) is g
