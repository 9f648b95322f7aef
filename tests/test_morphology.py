"""Max filters whose cost does not grow with the radius (mnistlite/morphology.py)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib.stride_tricks import sliding_window_view

from mnistlite.images.morphology import dilate


def _reference(a, r, edge):
    p = np.pad(a, r, mode="edge" if edge else "constant")
    return sliding_window_view(p, (2 * r + 1, 2 * r + 1)).max(axis=(2, 3))


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(st.sampled_from([np.uint8, np.bool_, np.float32]),
                  hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=30)),
       st.integers(0, 20), st.booleans())
def test_dilate_is_the_exact_square_max_filter(a, r, edge):
    """Against a sliding-window reference, radii past the picture's size included (the block path)."""
    if a.dtype == np.float32:
        a = np.nan_to_num(np.abs(a))   # images: no NaN, nothing below the zero outside
    out = dilate(a, r, edge=edge)
    assert out.shape == a.shape and out.dtype == a.dtype
    np.testing.assert_array_equal(out, _reference(a, r, edge) if r else a)
