"""MNIST-C-style corruptions (after Mu & Gilmer 2019) of MNIST test digits, for bench_realworld.py.

Each kind maps uint8 (28, 28) white-on-black digits and a generator to corrupted uint8 (28, 28)
images, at one fixed, clearly visible severity. They are re-implementations from the paper's
descriptions, not the published MNIST-C files, plus three the issue names: thick and thin strokes
and a low-resolution scan of another writer.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _u8(a):
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _affine(d, rng, matrix):
    """Apply a 2x2 matrix about the image centre (inverse mapping, bilinear)."""
    m = np.linalg.inv(np.asarray(matrix, float))
    c = 13.5
    off = np.array([c, c]) - m @ np.array([c, c])
    return np.asarray(Image.fromarray(d).transform((28, 28), Image.Transform.AFFINE,
                                                   (m[0, 0], m[0, 1], off[0], m[1, 0], m[1, 1], off[1]),
                                                   Image.Resampling.BILINEAR))


def rotate(d, rng):
    a = np.deg2rad(rng.uniform(15, 25) * rng.choice([-1, 1]))
    return _affine(d, rng, [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def shear(d, rng):
    s = rng.uniform(0.3, 0.6) * rng.choice([-1, 1])
    return _affine(d, rng, [[1, s], [0, 1]] if rng.random() < 0.5 else [[1, 0], [s, 1]])


def scale(d, rng):
    s = rng.uniform(0.5, 0.8)
    return _affine(d, rng, [[s, 0], [0, s]])


def translate(d, rng):
    dy, dx = rng.integers(-5, 6, size=2)
    out = np.zeros_like(d)
    ys, yd = (slice(0, 28 - dy), slice(dy, 28)) if dy >= 0 else (slice(-dy, 28), slice(0, 28 + dy))
    xs, xd = (slice(0, 28 - dx), slice(dx, 28)) if dx >= 0 else (slice(-dx, 28), slice(0, 28 + dx))
    out[yd, xd] = d[ys, xs]
    return out


def thick(d, rng):
    return np.asarray(Image.fromarray(d).filter(ImageFilter.MaxFilter(3)))


def thin(d, rng):
    big = Image.fromarray(d).resize((56, 56), Image.Resampling.BICUBIC).filter(ImageFilter.MinFilter(3))
    return np.asarray(big.resize((28, 28), Image.Resampling.BILINEAR))


def motion_blur(d, rng):
    a = np.deg2rad(rng.uniform(-45, 45))
    n = 9
    t = np.linspace(-3.5, 3.5, n)
    out = np.zeros((28, 28), float)
    for s in t:   # a 7-pixel motion streak: the mean of shifted copies
        out += _shift(d.astype(float), s * np.sin(a), s * np.cos(a))
    return _u8(out / n * 1.3)


def _shift(a, dy, dx):
    im = Image.fromarray(a.astype(np.float32), "F")
    return np.asarray(im.transform((28, 28), Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy),
                                   Image.Resampling.BILINEAR))


def shot_noise(d, rng):
    return _u8(rng.poisson(d / 255.0 * 12) / 12 * 255)


def impulse_noise(d, rng):
    out = d.copy()
    r = rng.random((28, 28))
    out[r < 0.07] = 0
    out[r > 0.93] = 255
    return out


def glass_blur(d, rng):
    b = np.asarray(Image.fromarray(d).filter(ImageFilter.GaussianBlur(0.7))).copy()
    for _ in range(2):   # local pixel swaps, as in the paper
        ys, xs = np.mgrid[1:27, 1:27]
        dy, dx = rng.integers(-1, 2, size=(2, 26, 26))
        b[ys, xs], b[ys + dy, xs + dx] = b[ys + dy, xs + dx], b[ys, xs]
    return np.asarray(Image.fromarray(b).filter(ImageFilter.GaussianBlur(0.7)))


def brightness(d, rng):
    return _u8(d.astype(float) + rng.uniform(90, 130))


def _plasma(rng, size=32):
    """Fractal (diamond-square-like) noise in [0, 1] by summing upsampled random octaves."""
    out = np.zeros((size, size))
    amp = 1.0
    for k in (2, 4, 8, 16):
        o = Image.fromarray(rng.random((k, k)).astype(np.float32), "F")
        o = o.resize((size, size), Image.Resampling.BICUBIC)
        out += amp * np.asarray(o)
        amp *= 0.55
    out -= out.min()
    return out / out.max()


def fog(d, rng):
    f = _plasma(rng)[:28, :28] * rng.uniform(150, 200)
    x = d.astype(float) + f
    return _u8(x * 255 / x.max())


def _across(rng):
    """Two points on different sides of the 28x28 field."""
    sides = rng.choice(4, 2, replace=False)
    pts = []
    for s in sides:
        t = rng.uniform(0, 27)
        pts.append(np.array([(t, 0), (t, 27), (0, t), (27, t)][s], float))
    return pts


def _draw_lines(d, rng, kind):
    im = Image.fromarray(d)
    dr = ImageDraw.Draw(im)
    if kind == "dotted":   # a line of dots 3-4 px apart from one side of the field to another
        p0, p1 = _across(rng)
        for t in np.linspace(0, 1, max(2, int(np.hypot(*(p1 - p0)) / rng.uniform(3, 4)))):
            x, y = p0 + t * (p1 - p0)
            dr.ellipse([x - 0.7, y - 0.7, x + 0.7, y + 0.7], fill=255)
    elif kind == "zigzag":
        x0, y0 = rng.uniform(0, 28, 2)
        pts = [(x0, y0)]
        ang = rng.uniform(0, 2 * np.pi)
        for i in range(5):
            a = ang + (0.9 if i % 2 else -0.9)
            pts.append((pts[-1][0] + 7 * np.cos(a), pts[-1][1] + 7 * np.sin(a)))
        dr.line(pts, fill=255, width=1)
    return np.asarray(im)


def dotted_line(d, rng):
    return _draw_lines(d, rng, "dotted")


def zigzag(d, rng):
    return _draw_lines(d, rng, "zigzag")


def spatter(d, rng):
    out = d.astype(float)
    yy, xx = np.mgrid[0:28, 0:28]
    for _ in range(rng.integers(3, 7)):
        cy, cx, r = rng.uniform(0, 28), rng.uniform(0, 28), rng.uniform(0.6, 1.4)
        out = np.maximum(out, 255 * np.clip(r - np.hypot(yy - cy, xx - cx) + 0.5, 0, 1) * rng.uniform(0.5, 1))
    return _u8(out)


def stripe(d, rng):
    out = d.copy()
    c, w = rng.integers(6, 21), rng.integers(1, 3)
    out[:, c:c + w] = 255 - out[:, c:c + w]   # an inverted vertical band
    return out


def canny_edges(d, rng):
    f = np.asarray(Image.fromarray(d).filter(ImageFilter.GaussianBlur(0.6)), float)
    gy, gx = np.gradient(f)
    g = np.hypot(gx, gy)
    return np.where(g > 0.35 * g.max(), 255, 0).astype(np.uint8)


def lowres_scan(d, rng):
    """Another writer's digit scanned at 16x16 and upscaled (a USPS-like source), black on grey paper."""
    small = Image.fromarray(d).resize((16, 16), Image.Resampling.BOX)
    big = np.asarray(small.resize((64, 64), Image.Resampling.BILINEAR), float)
    paper = rng.uniform(200, 240)
    return _u8(paper - big / 255 * (paper - rng.uniform(20, 70)) + rng.normal(0, 3, big.shape))


KINDS = {f.__name__: f for f in (rotate, shear, scale, translate, thick, thin, motion_blur, shot_noise,
                                 impulse_noise, glass_blur, brightness, fog, dotted_line, zigzag, spatter,
                                 stripe, canny_edges, lowres_scan)}
