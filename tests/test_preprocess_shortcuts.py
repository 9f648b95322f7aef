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


@settings(max_examples=300)
@given(st.integers(0, 2**31 - 1), st.integers(1, 70), st.integers(1, 70), st.sampled_from([0, 255, None]))
def test_a_clean_page_s_ring_level_is_flat_and_its_border_median(seed, h, w, level):
    # to_mnist skips is_flat and _border_median for a page whose whole two-pixel ring is one level
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 256, (h, w), dtype=np.uint8)
    if rng.random() < 0.7:
        g[:] = rng.integers(0, 256) if level is None else level
        g[2:-2, 2:-2] = rng.integers(0, 256, g[2:-2, 2:-2].shape)
        if rng.random() < 0.3:   # one pixel of the ring off the level
            g[rng.integers(h), rng.choice([0, 1, w - 2, w - 1]) % w] ^= 1
    found = ink.ring_level(g)
    if found is not None:
        assert ink.is_flat(g) and found == preprocess._border_median(g) and min(h, w) > 4
        assert np.all(g[:2] == found) and np.all(g[-2:] == found)
        assert np.all(g[:, :2] == found) and np.all(g[:, -2:] == found)
    else:
        assert min(h, w) <= 4 or len(np.unique(np.concatenate(
            [g[:2].ravel(), g[-2:].ravel(), g[:, :2].ravel(), g[:, -2:].ravel()]))) > 1


@settings(max_examples=300)
@given(st.integers(0, 2**31 - 1), st.integers(1, 70), st.integers(1, 70))
def test_the_extremes_skip_only_what_the_background_level_gives(seed, h, w):
    rng = np.random.default_rng(seed)
    g = rng.integers(rng.integers(0, 256), 256, (h, w), dtype=np.uint8) if rng.random() < 0.5 else \
        rng.integers(0, rng.integers(1, 257), (h, w), dtype=np.uint8)
    bg = int(g.flat[rng.integers(g.size)])   # _place's background is a level the picture holds
    assert preprocess._extremes(g, bg) == (int(g.min()), int(g.max()))


@settings(max_examples=300)
@given(st.integers(0, 2**31 - 1), st.integers(1, 20), st.integers(1, 20), st.floats(0.0, 1.0))
def test_the_ink_mass_and_moments_are_the_exact_integer_sums(seed, h, w, density):
    rng = np.random.default_rng(seed)
    box = np.where(rng.random((h, w)) < density, rng.integers(0, 256, (h, w)), 0).astype(np.uint8)
    if rng.random() < 0.2:
        box[:] = 255   # the largest sums
    rows, cols = np.indices((h, w))
    b = box.astype(np.int64)
    want = (int(b.sum()), int((b * rows).sum()), int((b * cols).sum()))
    got = preprocess._mass(box)
    assert got == want and all(type(v) is int for v in got)


_SIDE = st.integers(5, 90) | st.integers(ink.WORK + 1, 3 * ink.WORK)   # reduced to the working size first


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**31 - 1), _SIDE, _SIDE, st.sampled_from([0, 255, 200, 37]), st.booleans())
def test_a_clean_page_is_read_as_the_general_flat_path_reads_it(seed, h, w, bg, dark):
    # to_mnist with the clean-page shortcut == _place on the same picture with the border median taken
    rng = np.random.default_rng(seed)
    g = np.full((h, w), bg, np.uint8)
    r0, c0 = rng.integers(0, h), rng.integers(0, w)
    r1, c1 = rng.integers(r0, h) + 1, rng.integers(c0, w) + 1
    ink_level = 0 if dark else 255
    g[r0:r1, c0:c1] = np.where(rng.random((r1 - r0, c1 - c0)) < 0.5, ink_level,
                               rng.integers(0, 256, (r1 - r0, c1 - c0)))
    info = {}
    got = preprocess.to_mnist(g, info)
    want_info = {"path": "flat", "fallback": False, "size": g.shape}
    work = ink.to_work_size(g)
    if ink.is_flat(g):
        want = preprocess._place(work, None, want_info, True)
        assert info == want_info and np.array_equal(got, want)


@settings(max_examples=300)
@given(st.integers(0, 2**31 - 1), st.integers(1, 90), st.integers(1, 90), st.floats(0.0005, 1.0))
def test_the_box_of_nonzero_pixels_is_the_box_of_the_mask_above_zero(seed, h, w, density):
    rng = np.random.default_rng(seed)
    a = np.where(rng.random((h, w)) < density, rng.integers(1, 256, (h, w)), 0).astype(np.uint8)
    a[rng.integers(h), rng.integers(w)] = rng.integers(1, 256)
    view = np.pad(a, 2)[2:-2, 2:-2]   # _place passes a crop of a bigger picture
    assert preprocess._nonzero_box(a) == preprocess._bbox(a > 0) == preprocess._nonzero_box(view)
