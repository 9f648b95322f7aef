"""Digits that fill their frame (cropped to the ink box, low-resolution scans) are read, and no
picture with clear ink comes back empty: when preprocessing finds nothing, ``info`` says so."""
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnistlite.images import ink
from mnistlite.images.preprocess import preprocess_image, to_mnist


def _crop(d, k, how, margin=0):
    rows, cols = np.flatnonzero(d.any(axis=1)), np.flatnonzero(d.any(axis=0))
    b = np.pad(d[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], margin)
    h, w = b.shape
    return np.asarray(Image.fromarray(b).resize((w * k, h * k), how))


def _png(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


VARIANTS = {
    "2x bilinear": lambda d: _crop(d, 2, Image.Resampling.BILINEAR),
    "3x nearest, dark on white": lambda d: 255 - _crop(d, 3, Image.Resampling.NEAREST),
    "4x bilinear": lambda d: _crop(d, 4, Image.Resampling.BILINEAR),
    "8x nearest, dark on white": lambda d: 255 - _crop(d, 8, Image.Resampling.NEAREST),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_digit_cropped_to_its_edges_is_read_like_its_margin_twin(variant, mnist_uint8, small_model):
    _, (x, y) = mnist_uint8
    make = VARIANTS[variant]
    cropped = np.stack([preprocess_image(_png(make(d))) for d in x[:150]])
    assert cropped.reshape(150, -1).max(axis=1).min() > 0, "a cropped digit came back all black"
    twin = np.stack([to_mnist(np.pad(d, 2)) for d in x[:150]])
    acc, acc_twin = ((small_model.predict(a) == y[:150]).mean() for a in (cropped, twin))
    assert acc >= acc_twin - 0.04, (acc, acc_twin)


def test_a_frame_filling_digit_takes_no_photo_path(mnist_uint8):
    _, (x, _) = mnist_uint8
    paths = []
    for d in x[:100]:
        info = {}
        to_mnist(_crop(d, 4, Image.Resampling.BILINEAR), info)
        paths.append(info["path"])
    assert paths.count("frame") >= 90, paths


def test_a_one_filling_its_frame_is_not_taken_for_a_ruled_line():
    g = np.zeros((40, 12), np.uint8)
    g[:, 4:8] = 255                      # a 1 cropped to its ink box: a bar from border to border
    g[:4, 2:4] = 255                     # with a small flag
    out = to_mnist(g)
    assert np.count_nonzero(out > 127) > 40


def _inked(rng, x, i):
    """One of many kinds of picture with clear ink: a MNIST digit scaled, cropped, inverted, on grey,
    with a line or noise, or a drawn stroke."""
    d = x[i % len(x)]
    kind = i % 8
    if kind == 0:
        return _crop(d, int(rng.integers(1, 9)), Image.Resampling.BILINEAR)
    if kind == 1:
        return 255 - _crop(d, int(rng.integers(1, 9)), Image.Resampling.NEAREST, int(rng.integers(0, 3)))
    if kind == 2:                        # faint pencil on grey paper
        return (170 - d * 0.5).astype(np.uint8)
    if kind == 3:                        # a ruled line across the digit
        g = d.copy()
        g[int(rng.integers(0, 28))] = 255
        return g
    if kind == 4:                        # grain over a bigger picture
        g = np.asarray(Image.fromarray(d).resize((112, 112), Image.Resampling.BILINEAR), np.float32)
        return np.clip(g + rng.normal(0, 10, g.shape), 0, 255).astype(np.uint8)
    if kind == 5:                        # a thin stroke drawn on white, anywhere
        im = Image.new("L", (int(rng.integers(20, 400)), int(rng.integers(20, 400))), 255)
        w, h = im.size
        pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
        ImageDraw.Draw(im).line(pts, fill=0, width=int(rng.integers(1, 6)))
        return np.asarray(im)
    if kind == 6:                        # a digit shifted half out of its frame
        return np.roll(d, int(rng.integers(8, 14)), axis=int(rng.integers(0, 2)))
    return np.clip(d.astype(np.int16) + 60, 0, 255).astype(np.uint8)   # ink on a lit background


def test_no_picture_with_clear_ink_comes_back_empty(mnist_uint8):
    _, (x, _) = mnist_uint8
    rng = np.random.default_rng(24)
    for i in range(400):
        g = _inked(rng, x, i)
        info = {}
        out = to_mnist(g, info)
        assert out.any() and not info["empty"] and info["reason"] is None, (i, g.shape, info)


@pytest.mark.parametrize("g", [np.full((40, 40), 200, np.uint8), np.zeros((3, 500), np.uint8),
                               np.clip(200 + np.linspace(0, 20, 300)[None] + np.zeros((300, 1)), 0,
                                       255).astype(np.uint8)], ids=["grey", "thin black", "faint light"])
def test_a_picture_without_ink_says_so(g):
    info = {}
    out = to_mnist(g, info)
    assert not out.any() and info["empty"] and "no ink" in info["reason"]


def test_the_frame_level_is_the_background_not_the_ink():
    g = np.full((60, 40), 230, np.uint8)     # dark ink on light paper, touching every edge
    g[:, 18:24] = 10
    g[28:32, :] = 10
    assert ink.frame_level(g) == 230
    assert ink.frame_level(np.tile(np.linspace(40, 140, 60, dtype=np.uint8), (60, 1))) is None   # fog
