"""Pure noise uploads, with no digit in them, for bench_honest.py ``--kinds noise``: wider than
nondigit_cases.py's one "noise" kind, and from their own generator (not the training pool's).

Every input has its own size (28 to 600 px a side, log-uniform, aspect 1:2 to 2:1) and is saved as PNG
or as JPEG (quality 20-95), so small ones take preprocessing's scan path and large ones its photo path.
Kinds: uniform (any range), gaussian (any mean and sigma), low-contrast (a few levels around paper),
salt-and-pepper (0.2-50% specks, either polarity), colour (RGB, channels independent), blurred
(Gaussian blur of 0.5-8 px), perlin-like (several octaves of smoothed value noise), dark (a
lens-cap or night frame: sensor noise near black) and small (any of those at 28-64 px).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

KINDS = ("uniform", "gaussian", "lowcontrast", "saltpepper", "colour", "blurred", "perlin", "dark", "small")


def _shape(rng, lo=28, hi=600):
    h = int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    w = int(np.clip(h * np.exp(rng.uniform(np.log(0.5), np.log(2.0))), lo, hi))
    return h, w


def _u8(a) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def uniform(rng, shape):
    lo = rng.uniform(0, 128)
    hi = rng.uniform(max(lo + 60, 128), 256)
    return _u8(rng.uniform(lo, hi, shape))


def gaussian(rng, shape):
    return _u8(rng.normal(rng.uniform(30, 225), rng.uniform(15, 100), shape))


def lowcontrast(rng, shape):
    paper = rng.uniform(90, 245)
    if rng.random() < 0.5:
        return _u8(rng.normal(paper, rng.uniform(5, 15), shape))
    span = rng.uniform(15, 50)
    return _u8(paper - rng.uniform(0, span, shape))


def saltpepper(rng, shape):
    paper, speck = rng.uniform(170, 255), rng.uniform(0, 90)
    if rng.random() < 0.3:
        paper, speck = 255 - paper, 255 - speck
    a = np.full(shape, paper)
    u = rng.random(shape)
    density = np.exp(rng.uniform(np.log(0.002), np.log(0.5)))
    a[u < density] = speck
    if rng.random() < 0.5:   # both salt and pepper
        a[u > 1 - density / 2] = 255 - speck
    return _u8(a)


def colour(rng, shape):
    if rng.random() < 0.5:
        a = rng.uniform(0, 256, shape + (3,))
    else:
        a = rng.normal(rng.uniform(60, 200, 3), rng.uniform(20, 80, 3), shape + (3,))
    return _u8(a)


def blurred(rng, shape):
    a = Image.fromarray(_u8(rng.uniform(0, 256, shape))).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 8)))
    a = np.asarray(a, np.float32)
    # blurring flattens the contrast: stretched back by a random amount
    return _u8((a - a.mean()) * rng.uniform(1, 4) / max(float(a.std()), 1.0) * 40 + rng.uniform(80, 180))


def perlin(rng, shape):
    h, w = shape
    total = np.zeros(shape, np.float32)
    cell, amp = max(h, w) / rng.uniform(2, 8), 1.0
    while cell >= 2:
        gh, gw = int(h / cell) + 2, int(w / cell) + 2
        grid = Image.fromarray(rng.random((gh, gw)).astype(np.float32), "F")
        up = np.asarray(grid.resize((int(gw * cell), int(gh * cell)), Image.Resampling.BICUBIC))
        total += amp * up[:h, :w]
        cell, amp = cell / 2, amp * rng.uniform(0.4, 0.7)
    total = (total - total.min()) / max(float(np.ptp(total)), 1e-6)
    lo = rng.uniform(0, 100)
    return _u8(lo + total * rng.uniform(80, 255 - lo))


def dark(rng, shape):
    a = rng.normal(rng.uniform(5, 40), rng.uniform(3, 20), shape + (3,))
    a += rng.normal(0, rng.uniform(0, 10), shape)[..., None]   # luminance grain shared by the channels
    return _u8(a)


MAKERS = {"uniform": uniform, "gaussian": gaussian, "lowcontrast": lowcontrast, "saltpepper": saltpepper,
          "colour": colour, "blurred": blurred, "perlin": perlin, "dark": dark}


def _encode(a: np.ndarray, rng) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(a)
    if rng.random() < 0.5:
        img.save(buf, format="JPEG", quality=int(rng.integers(20, 96)))
    else:
        img.save(buf, format="PNG")
    return buf.getvalue()


def draw(kind: str, rng) -> bytes:
    """One upload (PNG or JPEG bytes) of noise ``kind``."""
    if kind == "small":
        name = list(MAKERS)[int(rng.integers(len(MAKERS)))]
        return _encode(MAKERS[name](rng, _shape(rng, 28, 64)), rng)
    return _encode(MAKERS[kind](rng, _shape(rng)), rng)


def make(kind: str, n: int, seed: int, digits=None) -> list:
    """``n`` uploads (bytes) of ``kind``, from ``seed``; ``digits`` is unused (nondigit_cases.make's form)."""
    if kind not in KINDS:
        raise ValueError(f"noise kind must be one of {', '.join(KINDS)}, got {kind!r}")
    rng = np.random.default_rng([seed, 100 + KINDS.index(kind)])
    return [draw(kind, rng) for _ in range(n)]
