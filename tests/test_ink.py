"""Finding the digit in photos and damaged scans (mnistlite/images/ink.py) and through preprocess_image."""
import io
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw, ImageFilter

from mnistlite.images import ink
from mnistlite.images.decode import decode_image
from mnistlite.images.preprocess import preprocess_image, to_mnist


def _bfs_labels(mask):
    """Reference 8-connected labelling, one pixel at a time."""
    h, w = mask.shape
    lab = -np.ones((h, w), int)
    n = 0
    for i, j in zip(*np.nonzero(mask), strict=True):
        if lab[i, j] >= 0:
            continue
        stack, lab[i, j] = [(i, j)], n
        while stack:
            a, b = stack.pop()
            for dy, dx in itertools.product((-1, 0, 1), repeat=2):
                u, v = a + dy, b + dx
                if 0 <= u < h and 0 <= v < w and mask[u, v] and lab[u, v] < 0:
                    lab[u, v] = n
                    stack.append((u, v))
        n += 1
    return lab, n


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40)))
def test_label_matches_a_breadth_first_reference(mask):
    lab, n = ink.label(mask)
    ref, m = _bfs_labels(mask)
    assert n == m
    assert ((lab >= 0) == mask).all()
    # the same partition: each of our labels maps to exactly one reference label and back
    pairs = set(zip(lab[mask].tolist(), ref[mask].tolist(), strict=True))
    assert len(pairs) == n


def test_label_joins_a_long_serpentine_in_one_component():
    m = np.zeros((121, 120), bool)
    m[::2] = True                    # rows joined alternately at the right and left ends: one path
    m[1::4, -1] = True               # thousands of pixels long, labelled without one pass per pixel
    m[3::4, 0] = True
    lab, n = ink.label(m)
    assert n == 1 and (lab[m] == 0).all()
    m[60, 0] = m[61, :] = False      # cut it: two components
    assert ink.label(m)[1] == 2


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12)),
                  elements=st.floats(0, 255, width=32)))
def test_median3_is_the_exact_3x3_median(a):
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(np.pad(a, 1, mode="edge"), (3, 3)).reshape(*a.shape, 9)
    np.testing.assert_array_equal(ink.median3(a), np.median(win, axis=2).astype(np.float32))


def _photo(digit, rng, *, size=(960, 720), dark_board=False, page_edge=False, specks=False, pen=False):
    """A MNIST digit photographed on paper: lighting gradient, grain, JPEG (a small renderer of its own)."""
    w, h = size
    side = int(h * 0.45)
    strokes = Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC)
    if pen:   # a thin pen: the stroke eroded to about a third of MNIST's relative width
        strokes = strokes.filter(ImageFilter.MinFilter(7)).point(lambda v: 255 if v > 60 else 0)
    strokes = strokes.resize((side, side), Image.Resampling.BILINEAR)
    yy, xx = np.mgrid[0:h, 0:w]
    light = 1 - 0.35 * (xx / w) - 0.15 * (yy / h)
    paper, ink_level = (60.0, 225.0) if dark_board else (235.0, 35.0)
    refl = np.full((h, w), paper)
    x0, y0 = int(w * rng.uniform(0.2, 0.5)), int(h * rng.uniform(0.15, 0.4))
    s = np.asarray(strokes, float) / 255
    refl[y0:y0 + side, x0:x0 + side] = paper + (ink_level - paper) * s
    if page_edge:
        refl[:, : w // 15] = 90
    img = refl * light + rng.normal(0, 6, (h, w))
    if specks:
        for _ in range(30):
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            img[cy:cy + 3, cx:cx + 3] = 40
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["ink on paper", "chalk on a dark board", "page edge and specks",
                                  "thin pen"])
def test_photos_are_read(kind, mnist_uint8, small_model):
    _, (x, y) = mnist_uint8
    rng = np.random.default_rng(3)
    opts = {"chalk on a dark board": {"dark_board": True},
            "page edge and specks": {"page_edge": True, "specks": True},
            "thin pen": {"pen": True}}.get(kind, {})
    digits = np.stack([preprocess_image(_photo(x[i], rng, **opts)) for i in range(30)])
    assert digits.dtype == np.uint8 and digits.shape == (30, 28, 28)
    # the digit, not the paper: the ink fits MNIST's 20-pixel box
    for d in digits:
        rows, cols = np.flatnonzero((d > 0).any(axis=1)), np.flatnonzero((d > 0).any(axis=0))
        assert len(rows) and max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21
    assert (small_model.predict(digits) == y[:30]).mean() >= 0.8


def test_thin_pen_strokes_are_thickened_towards_mnist(mnist_uint8):
    _, (x, _) = mnist_uint8
    rng = np.random.default_rng(4)
    widths = [ink.stroke_width(preprocess_image(_photo(x[i], rng, pen=True)) > 127) for i in range(10)]
    mnist = [ink.stroke_width(d > 127) for d in x[:10]]
    assert np.median(widths) > 0.6 * np.median(mnist)


def test_big_jpegs_decode_at_reduced_scale_with_the_same_answer(mnist_uint8):
    _, (x, _) = mnist_uint8
    blob = _photo(x[0], np.random.default_rng(5), size=(4000, 3000))
    small = decode_image(blob, reduce=ink.WORK)
    assert small.shape == (375, 500)               # 1/8 scale: libjpeg's DCT scaling
    full = to_mnist(decode_image(blob))
    corr = np.corrcoef(preprocess_image(blob).ravel(), full.ravel())[0, 1]
    assert corr > 0.8


def test_mnist_digits_take_the_flat_path(mnist_uint8):
    _, (x, _) = mnist_uint8
    assert all(ink.is_flat(d) for d in x[:2000])


def test_fog_is_removed_and_noise_is_left_for_the_detector(mnist_uint8):
    _, (x, _) = mnist_uint8
    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[0:28, 0:28]
    fog = 40 + 100 * (xx / 27) * (0.5 + 0.5 * yy / 27)      # uneven light over a small scan
    corr = []
    for d in x[:10]:
        out = to_mnist(np.clip(d * 0.6 + fog, 0, 255).astype(np.uint8))
        corr.append(np.corrcoef(out.ravel(), to_mnist(d).ravel())[0, 1])
    assert np.median(corr) > 0.85
    noise = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    assert ink.clean(noise) is noise or not ink.clean(noise).any()


def test_blank_photo_gives_zeros():
    rng = np.random.default_rng(7)
    img = np.clip(200 + rng.normal(0, 4, (480, 640)) + np.linspace(0, 30, 640), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG")
    assert not preprocess_image(buf.getvalue()).any()


def test_stroke_width_estimate():
    m = np.zeros((60, 60), bool)
    m[10:50, 20:24] = True          # a 4-pixel-wide bar
    assert 3.0 < ink.stroke_width(m) < 4.5
    d = Image.new("L", (60, 60))
    ImageDraw.Draw(d).line([(5, 5), (55, 55)], fill=255, width=1)
    assert ink.stroke_width(np.asarray(d) > 0) < 1.6
