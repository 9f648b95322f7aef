"""Non-digit uploads for bench_honest.py: their own generator (not mnistlite.images.nondigits, which
trains the model), drawn as people would send them: dark ink on light paper at 200-400 px, PNG bytes.

Kinds: blank paper, noise, scribbles, strokes and blobs, letters (DejaVu fonts when installed, else
Pillow's own font), textures, crops of several MNIST *test* digits side by side, and simple drawings
of things (a house, a smiley, a star, an arrow, a heart).
"""
from __future__ import annotations

import glob
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Letters and signs that are not digit shapes (no O, o, I, l, i, S, s, Z, z, B, b, G, g, q, D).
LETTERS = "AEFHKMNRWXYaehkmnrwxy?&%#@"
KINDS = ("blank", "noise", "scribble", "strokes", "letter", "texture", "multi", "drawing")


def _paper(rng, side):
    level = int(rng.integers(215, 256))
    return Image.new("L", (side, side), level), level


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _ink(rng):
    return int(rng.integers(0, 70))


def blank(rng, side):
    img, level = _paper(rng, side)
    a = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(0, 3), (side, side))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def noise(rng, side):
    k = int(rng.integers(3))
    if k == 0:
        a = rng.integers(0, 256, (side, side))
    elif k == 1:
        a = np.clip(rng.normal(128, 60, (side, side)), 0, 255)
    else:   # salt and pepper on paper
        a = np.full((side, side), 240.0)
        u = rng.random((side, side))
        a[u < 0.05] = 0
    return Image.fromarray(a.astype(np.uint8))


def scribble(rng, side):
    img, _ = _paper(rng, side)
    d = ImageDraw.Draw(img)
    t = np.linspace(0, 1, 200)
    f = rng.uniform(1, 6, (2, 3))
    ph = rng.uniform(0, 2 * np.pi, (2, 3))
    xs = sum(np.sin(2 * np.pi * f[0, i] * t + ph[0, i]) for i in range(3))
    ys = sum(np.sin(2 * np.pi * f[1, i] * t + ph[1, i]) for i in range(3))
    pts = np.stack([xs, ys], 1)
    pts = (pts - pts.min(0)) / np.ptp(pts, 0).max() * side * 0.7 + side * 0.15
    d.line([tuple(p) for p in pts.tolist()], fill=_ink(rng), width=int(rng.integers(4, 12)), joint="curve")
    return img


def strokes(rng, side):
    img, _ = _paper(rng, side)
    d = ImageDraw.Draw(img)
    ink = _ink(rng)
    if rng.random() < 0.5:   # hatching
        n = int(rng.integers(4, 9))
        a = rng.uniform(0, np.pi)
        for i in range(n):
            off = (i - n / 2) * side * 0.08
            cx, cy = side / 2 + off * np.cos(a + np.pi / 2), side / 2 + off * np.sin(a + np.pi / 2)
            dx, dy = np.cos(a) * side * 0.3, np.sin(a) * side * 0.3
            d.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=ink, width=int(rng.integers(4, 10)))
    else:                    # ink blots
        for _ in range(int(rng.integers(2, 6))):
            c = rng.uniform(side * 0.2, side * 0.8, 2)
            r = rng.uniform(side * 0.04, side * 0.15)
            d.ellipse([c[0] - r, c[1] - r * rng.uniform(0.6, 1.4), c[0] + r, c[1] + r], fill=ink)
    return img


FONTS = sorted(glob.glob("/usr/share/fonts/truetype/dejavu/*.ttf"))   # empty: Pillow's own font


def letter(rng, side, fonts=FONTS):
    img, _ = _paper(rng, side)
    d = ImageDraw.Draw(img)
    size = int(side * rng.uniform(0.4, 0.7))
    font = (ImageFont.truetype(fonts[int(rng.integers(len(fonts)))], size) if fonts
            else ImageFont.load_default(size=size))
    d.text((side / 2, side / 2), LETTERS[int(rng.integers(len(LETTERS)))], fill=_ink(rng), font=font,
           anchor="mm")
    return img


def texture(rng, side):
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    k = int(rng.integers(3))
    if k == 0:     # wood grain
        r = np.sqrt((xx - rng.uniform(0, side)) ** 2 + (yy - rng.uniform(0, side)) ** 2)
        a = 128 + 100 * np.sin(r * rng.uniform(0.1, 0.4) + 3 * np.sin(xx * 0.02))
    elif k == 1:   # bricks
        h = int(rng.integers(12, 30))
        row = (yy // h).astype(int)
        a = np.where((yy % h < 3) | (((xx + (row % 2) * h) % (2 * h)) < 3), 40, 220)
    else:          # fabric: blurred noise, thresholded
        n = Image.fromarray((rng.random((side, side)) * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(rng.uniform(2, 5)))
        a = np.where(np.asarray(n) > 128, 60, 230)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def multi(rng, side, digits):
    k = int(rng.integers(2, 5))
    parts = [digits[int(i)] for i in rng.integers(0, len(digits), k)]
    row = np.concatenate(parts, axis=1)
    img = Image.fromarray(255 - row).resize((row.shape[1] * 8, 28 * 8))
    return img


def drawing(rng, side):
    img, _ = _paper(rng, side)
    d = ImageDraw.Draw(img)
    ink, w = _ink(rng), int(rng.integers(4, 9))
    s = side
    k = int(rng.integers(5))
    if k == 0:   # house
        d.rectangle([s * .25, s * .45, s * .75, s * .85], outline=ink, width=w)
        d.line([(s * .2, s * .47), (s * .5, s * .15), (s * .8, s * .47)], fill=ink, width=w)
        d.rectangle([s * .45, s * .65, s * .55, s * .85], outline=ink, width=w)
    elif k == 1:  # smiley
        d.ellipse([s * .15, s * .15, s * .85, s * .85], outline=ink, width=w)
        d.ellipse([s * .35, s * .35, s * .42, s * .42], fill=ink)
        d.ellipse([s * .58, s * .35, s * .65, s * .42], fill=ink)
        d.arc([s * .3, s * .4, s * .7, s * .7], 20, 160, fill=ink, width=w)
    elif k == 2:  # star
        a = np.arange(10) * np.pi / 5 + rng.uniform(0, 1)
        r = np.where(np.arange(10) % 2, s * .15, s * .38)
        d.polygon([(s / 2 + r[i] * np.cos(a[i]), s / 2 + r[i] * np.sin(a[i])) for i in range(10)],
                  outline=ink, width=w)
    elif k == 3:  # arrow
        d.line([(s * .15, s * .5), (s * .85, s * .5)], fill=ink, width=w)
        d.line([(s * .65, s * .3), (s * .85, s * .5), (s * .65, s * .7)], fill=ink, width=w)
    else:         # heart
        d.ellipse([s * .2, s * .25, s * .52, s * .55], fill=ink)
        d.ellipse([s * .48, s * .25, s * .8, s * .55], fill=ink)
        d.polygon([(s * .22, s * .45), (s * .78, s * .45), (s * .5, s * .85)], fill=ink)
    return img.rotate(float(rng.uniform(-15, 15)), fillcolor=int(np.asarray(img)[0, 0]))


def make(kind: str, n: int, seed: int, digits=None) -> list:
    """``n`` PNG uploads (bytes) of ``kind``, from ``seed``; ``digits`` uint8 (m, 28, 28) feed "multi"."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    out = []
    for _ in range(n):
        side = int(rng.integers(200, 400))
        if kind == "multi":
            img = multi(rng, side, digits)
        else:
            img = globals()[kind](rng, side)
        out.append(_png(img))
    return out
