"""Finding the digit in photos and damaged scans (mnistlite/images/ink.py) and through preprocess_image."""
import copy
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


def _noise_upload(rng) -> bytes:
    """Pure noise as an upload, no digit in it: any kind, level, density, size (100-600 px, not square),
    grey or colour, PNG or JPEG."""
    h, w = (int(v) for v in rng.integers(100, 601, 2))
    kind = int(rng.integers(5))
    if kind == 0:     # uniform over a random range
        lo = rng.uniform(0, 120)
        a = rng.uniform(lo, rng.uniform(lo + 60, 256), (h, w))
    elif kind == 1:   # Gaussian, any mean and sigma
        a = rng.normal(rng.uniform(40, 220), rng.uniform(10, 90), (h, w))
    elif kind == 2:   # colour: channels independent
        a = rng.normal(rng.uniform(60, 200, 3), rng.uniform(20, 80, 3), (h, w, 3))
    elif kind == 3:   # specks on paper, either polarity, 0.3% to 30% of the pixels
        paper, speck = rng.uniform(190, 255), rng.uniform(0, 80)
        if rng.random() < 0.3:
            paper, speck = 255 - paper, 255 - speck
        a = np.where(rng.random((h, w)) < np.exp(rng.uniform(np.log(0.003), np.log(0.3))), speck, paper)
    else:             # a dark frame: sensor noise near black
        a = rng.normal(rng.uniform(5, 40), rng.uniform(3, 15), (h, w, 3))
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    if rng.random() < 0.5:
        im.save(buf, "JPEG", quality=int(rng.integers(30, 95)))
    else:
        im.save(buf, "PNG")
    return buf.getvalue()


def test_photos_of_pure_noise_come_out_empty_and_are_not_a_digit(small_model):
    """Noise holds no digit: preprocessing must not blow one of its grains up into a digit-like blob."""
    from mnistlite.nn.calibration import NOT_A_DIGIT, Calibration
    from mnistlite.quality.honest import judge

    rng = np.random.default_rng(23)
    out, infos = [], []
    for _ in range(60):
        infos.append({})
        out.append(preprocess_image(_noise_upload(rng), info=infos[-1]))
    out = np.stack(out)
    assert not out.any()
    assert all(i["empty"] and i["reason"] for i in infos)
    assert sum(i["reason"].startswith("noise") for i in infos) >= 30   # the rest: "no ink stands out"
    model = copy.deepcopy(small_model)
    model.calibration = Calibration(temperature=1.0, min_confidence=0.0)   # answers every digit
    assert (judge(model, out).verdict == NOT_A_DIGIT).all()


@pytest.mark.parametrize("damage", ["grain", "specks", "salt and pepper"])
def test_noisy_photos_of_digits_are_still_read(damage, mnist_uint8, small_model):
    """A digit under heavy noise is still a digit: the noise rule looks for one coherent stroke."""
    _, (x, y) = mnist_uint8
    rng = np.random.default_rng(6)
    digits, empty = [], 0
    for i in range(30):
        blob = _photo(x[i], rng, specks=damage == "specks")
        g = np.asarray(Image.open(io.BytesIO(blob)).convert("L"), float)
        if damage == "grain":
            g = g + rng.normal(0, 25, g.shape)
        elif damage == "salt and pepper":
            u = rng.random(g.shape)
            g[u < 0.02] = 0
            g[u > 0.98] = 255
        info = {}
        buf = io.BytesIO()
        Image.fromarray(np.clip(g, 0, 255).astype(np.uint8)).save(buf, "PNG")
        digits.append(preprocess_image(buf.getvalue(), info=info))
        empty += info["empty"]
    assert empty == 0
    assert (small_model.predict(np.stack(digits)) == y[:30]).mean() >= 0.8
