"""The detector's one-image path (a service upload) must give the batch path's statistics to the bit on
any image, not only on digits and the noise kinds: ink on every edge and corner, lone pixels, levels at
the cuts."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlite.quality.detector import _one, image_stats

# pixel levels at and around the detector's cuts, plus blank and full ink
_LEVELS = [0, 4, 5, 25, 26, 49, 50, 51, 127, 128, 205, 206, 255]


@st.composite
def images(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    share = draw(st.sampled_from([0.01, 0.05, 0.2, 0.5, 0.9, 1.0]))
    rng = np.random.default_rng(seed)
    levels = rng.choice(_LEVELS, (28, 28)) if draw(st.booleans()) else rng.integers(0, 256, (28, 28))
    return np.where(rng.random((28, 28)) < share, levels, 0).astype(np.uint8)


@settings(max_examples=300, deadline=None)
@given(images())
def test_one_image_statistics_are_the_batch_statistics(image):
    batch = {k: v[0].item() for k, v in image_stats(image[None]).items()}
    assert _one(image) == batch


def test_isolated_ink_at_the_edges_and_corners_counts_as_the_batch_counts():
    image = np.zeros((28, 28), np.uint8)
    for r, c in [(0, 0), (0, 27), (27, 0), (27, 27), (0, 14), (14, 0), (14, 27), (27, 14), (13, 13)]:
        image[r, c] = 255
    image[5, 27], image[6, 0] = 255, 255   # ends of consecutive rows: not neighbours
    stats = _one(image)
    assert stats["speckle"] == 11 == image_stats(image[None])["speckle"][0]
    image[6, 27] = 255   # below (5, 27): both stop being isolated
    assert _one(image)["speckle"] == 10 == image_stats(image[None])["speckle"][0]
