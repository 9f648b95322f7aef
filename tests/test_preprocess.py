"""Preprocessing arrays: to_float and to_model_input, and to_mnist on uint8 pictures."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from preprocess_kit import shift_corr

from mnistlite.images.preprocess import to_float, to_mnist, to_model_input

# --- arrays -------------------------------------------------------------------------------------

def test_to_float_and_model_input_shapes():
    x = np.full((3, 28, 28), 255, np.uint8)
    f = to_float(x)
    assert f.dtype == np.float32 and f.shape == (3, 784) and f.max() == 1.0
    assert to_model_input(x[0]).shape == (1, 784)
    with pytest.raises(ValueError, match="uint8"):
        to_float(x.astype(np.int32))


# --- to_mnist on arrays -------------------------------------------------------------------------

def test_mnist_digits_pass_through_to_mnist_unchanged(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    out = np.stack([to_mnist(d) for d in x[:3000]])
    err = np.abs(out.astype(np.int16) - x[:3000])
    assert (err.reshape(len(out), -1).max(axis=1) <= 1).mean() >= 0.995  # measured: 1.000
    assert err.mean() < 0.05


def test_mnist_accuracy_unchanged_through_to_mnist(mnist_uint8, small_model):
    (_, _), (x, y) = mnist_uint8
    x, y = x[:3000], y[:3000]
    before = (small_model.predict(x) == y).mean()
    after = (small_model.predict(np.stack([to_mnist(d) for d in x])) == y).mean()
    assert after >= before - 0.002


def test_polarity_does_not_matter(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    for d in x[:50]:
        np.testing.assert_array_equal(to_mnist(255 - d), to_mnist(d))


def test_faint_pencil_on_grey_paper_is_stretched(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    d = x[0]
    paper = (200 - d.astype(np.int16) * 100 // 255).astype(np.uint8)  # ink 100..200 on paper 200
    out = to_mnist(paper)
    assert out.max() == 255
    assert shift_corr(out, d) > 0.97


def test_cached_lookup_tables_are_read_only_and_do_not_leak_between_images(mnist_uint8):
    from mnistlite.images.preprocess import _lut

    with pytest.raises(ValueError, match="read-only"):
        _lut(255, True, 255)[0] = 1
    (_, _), (x, _) = mnist_uint8
    d = x[0]
    grey = (200 - d.astype(np.int16) * 100 // 255).astype(np.uint8)
    first = [to_mnist(a) for a in (255 - d, grey, d)]
    again = [to_mnist(a) for a in (grey, d, 255 - d)]   # other order: cached tables must not matter
    for a, b in zip(first, again[2:] + again[:2], strict=True):
        np.testing.assert_array_equal(a, b)

@pytest.mark.parametrize("value", [0, 77, 255])
def test_blank_images_give_zeros(value):
    for shape in [(1, 1), (1, 50), (28, 28), (300, 200)]:
        out = to_mnist(np.full(shape, value, np.uint8))
        assert out.dtype == np.uint8 and out.shape == (28, 28) and not out.any()


def test_single_ink_pixel_becomes_a_centred_blob():
    g = np.full((9, 9), 255, np.uint8)
    g[2, 6] = 0
    out = to_mnist(g)
    ys, xs = np.nonzero(out)
    assert out.max() == 255 and np.ptp(ys) + 1 == 20 and np.ptp(xs) + 1 == 20
    assert abs(ys.mean() - 14) <= 0.5 and abs(xs.mean() - 14) <= 0.5


def test_speck_far_away_widens_the_box_but_faint_noise_does_not():
    g = np.zeros((400, 400), np.uint8)
    g[100:300, 180:220] = 255                      # a tall bar: "1"
    noisy = g.copy()
    noisy[350:360, 20:30] = 20                     # faint smudge, 8% of the contrast
    np.testing.assert_array_equal(to_mnist(noisy), to_mnist(g))


@pytest.mark.parametrize("bad", [np.zeros((0, 5), np.uint8), np.zeros((5, 5), np.float32),
                                 np.zeros((2, 5, 5), np.uint8)])
def test_to_mnist_rejects_bad_arrays(bad):
    with pytest.raises(ValueError, match="uint8 \\(h, w\\)"):
        to_mnist(bad)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=64)))
def test_to_mnist_always_gives_a_28x28_digit_within_20px(g):
    out = to_mnist(g)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    if out.any():
        ys, xs = np.nonzero(out)
        assert np.ptp(ys) < 20 and np.ptp(xs) < 20
