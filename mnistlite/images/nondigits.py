"""Generated non-digits for outlier exposure: training examples of "no class" (label -1).

Scribbles, strokes and blobs, letters drawn with a font, textures, crops of several digits, noise and
blank paper, each drawn large and brought to MNIST form by ``to_mnist`` exactly as an upload is, so the
model meets them as the service will. ``outlier_hook`` adds a share of them to every training batch.
Letters that are also digit shapes (O, I, l, S, Z, B, G, ...) are left out on purpose.
"""
from __future__ import annotations

import numpy as np

from .augment import random_shift
from .preprocess import to_mnist

CANVAS = 56
LETTERS = "ACEFHJKLMNPRTUVWXYacdefhkmnprtuvwxy#%&@?!*+=<>$"   # no digit look-alikes (O I l S Z B G b q g)
KINDS = ("scribble", "curve", "strokes", "blob", "letter", "texture", "multi", "noise", "blank")


def _scribble(draw, rng):
    n = int(rng.integers(8, 20))
    pts = np.cumsum(rng.normal(0, 9, (n, 2)), axis=0)
    pts = (pts - pts.min(0)) / max(np.ptp(pts, axis=0).max(), 1e-6) * (CANVAS - 8) + 4
    draw.line([tuple(p) for p in pts.tolist()], fill=255, width=int(rng.integers(2, 6)), joint="curve")


def _curve(draw, rng):
    """A smooth loop-de-loop: a sum of a few sines per axis, like a pen wandering."""
    t = np.linspace(0, 1, 120)[:, None]
    f = rng.uniform(0.5, 5, (2, 3))
    ph = rng.uniform(0, 2 * np.pi, (2, 3))
    pts = np.stack([np.sin(2 * np.pi * t * f[i] + ph[i]).sum(1) for i in range(2)], 1)
    pts = (pts - pts.min(0)) / max(np.ptp(pts, axis=0).max(), 1e-6) * (CANVAS - 8) + 4
    draw.line([tuple(p) for p in pts.tolist()], fill=255, width=int(rng.integers(2, 6)), joint="curve")


def _noise(rng) -> np.ndarray:
    """Noise as cameras and scanners make it (uniform, Gaussian, blurred, salt and pepper on paper) at
    the sizes uploads come in: most over ``ink.SMALL``, which preprocessing cleans as photos, where
    the component it keeps and scales down looks like a smooth blob or bar, not like noise."""
    from PIL import Image, ImageFilter

    small = rng.random() < 0.25
    side = int(rng.integers(28, 65)) if small else int(np.exp(rng.uniform(np.log(65), np.log(400))))
    shape = (side, max(16, int(side * rng.uniform(0.6, 1.6))))
    kind = int(rng.integers(4))
    if kind == 0:
        a = rng.random(shape) * 255
    elif kind == 1:
        a = rng.normal(rng.uniform(60, 200), rng.uniform(15, 90), shape)
    elif kind == 2:   # specks on paper, either polarity
        paper, speck = (rng.uniform(180, 255), rng.uniform(0, 80))[::1 if rng.random() < 0.7 else -1]
        a = np.where(rng.random(shape) < rng.uniform(0.01, 0.3), speck, paper)
    else:
        a = np.asarray(Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(rng.uniform(0.5, 4))), np.float64)
    return np.clip(a, 0, 255).astype(np.uint8)


def _strokes(draw, rng):
    for _ in range(int(rng.integers(3, 7))):
        a, b = rng.uniform(2, CANVAS - 2, (2, 2)).tolist()
        draw.line([tuple(a), tuple(b)], fill=255, width=int(rng.integers(2, 6)))
    for _ in range(int(rng.integers(0, 3))):
        _ellipse(draw, rng, fill=True)


def _ellipse(draw, rng, fill):
    c = rng.uniform(8, CANVAS - 8, 2)
    r = rng.uniform(3, 14, 2)
    box = [float(c[0] - r[0]), float(c[1] - r[1]), float(c[0] + r[0]), float(c[1] + r[1])]
    draw.ellipse(box, fill=255 if fill else None, outline=255, width=3)


def _blob(draw, rng):
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            _ellipse(draw, rng, fill=True)
        else:
            pts = rng.uniform(4, CANVAS - 4, (int(rng.integers(3, 7)), 2))
            draw.polygon([tuple(p) for p in pts.tolist()], fill=255)


def _letter(draw, rng, fonts):
    ch = LETTERS[int(rng.integers(len(LETTERS)))]
    font = fonts[int(rng.integers(len(fonts)))]
    draw.text((CANVAS / 2, CANVAS / 2), ch, fill=255, font=font, anchor="mm")


def _texture(rng) -> np.ndarray:
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    a = rng.uniform(0, np.pi)
    f = rng.uniform(0.15, 0.9)
    kind = int(rng.integers(3))
    if kind == 0:    # stripes
        t = np.sin(f * (np.cos(a) * xx + np.sin(a) * yy)) > 0
    elif kind == 1:  # checks
        t = (np.sin(f * xx) > 0) ^ (np.sin(f * yy) > 0)
    else:            # dots
        t = (np.sin(f * xx) + np.sin(f * yy)) > 1.2
    return (t * 255).astype(np.uint8)


def _multi(rng, digits) -> np.ndarray:
    k = int(rng.integers(2, 4))
    parts = [digits[int(i)].reshape(28, 28) for i in rng.integers(0, len(digits), k)]
    row = np.concatenate([p[:, 4:24] for p in parts], axis=1)
    return (np.clip(row, 0, 1) * 255).astype(np.uint8) if row.dtype != np.uint8 else row


def draw_nondigit(kind: str, rng: np.random.Generator, *, digits=None, fonts=()) -> np.ndarray:
    """One non-digit of ``kind`` (one of KINDS) in MNIST form: uint8 (28, 28), white ink on black.

    ``digits`` (n, 784) or (n, 28, 28) feed "multi"; ``fonts`` (Pillow fonts) feed "letter"."""
    from PIL import Image, ImageDraw

    if kind == "blank":
        return np.zeros((28, 28), np.uint8)
    if kind == "noise":
        big = _noise(rng)
    elif kind == "texture":
        big = _texture(rng)
    elif kind == "multi":
        big = _multi(rng, digits)
    else:
        im = Image.new("L", (CANVAS, CANVAS), 0)
        draw = ImageDraw.Draw(im)
        if kind == "letter":
            _letter(draw, rng, fonts)
        else:
            {"scribble": _scribble, "curve": _curve, "strokes": _strokes, "blob": _blob}[kind](draw, rng)
        if kind == "letter" and rng.random() < 0.5:
            im = im.rotate(float(rng.uniform(-20, 20)), resample=Image.Resampling.BILINEAR)
        big = np.asarray(im)
    # Noise skips preprocessing's noise rule: what grain becomes without it (smooth blobs and bars) is
    # what the rule lets through from smoother noise, and the model learns to reject it.
    return to_mnist(big, noise_rule=kind != "noise")


def default_fonts(sizes=(30, 36, 42)):
    """Pillow's own scalable font at a few sizes (no system fonts needed)."""
    from PIL import ImageFont

    return [ImageFont.load_default(size=s) for s in sizes]


def outlier_pool(n: int, rng: np.random.Generator, digits) -> np.ndarray:
    """``n`` generated non-digits, float32 (n, 784) in [0, 1], kinds in turn; ``digits`` as for "multi"."""
    fonts = default_fonts()
    out = np.empty((n, 784), np.float32)
    for i in range(n):
        out[i] = draw_nondigit(KINDS[i % len(KINDS)], rng, digits=digits, fonts=fonts).reshape(784)
    out /= 255
    return out


def outlier_hook(share: float, pool: np.ndarray, inner=None):
    """A batch hook adding round(share * batch) pool images, shifted by up to 2 px, with label -1
    (``losses.OUTLIER``), after ``inner`` (the digit augmentation) has run on the digits."""
    def hook(xb, yb, rng):
        if inner is not None:
            xb, yb = inner(xb, yb, rng)
        m = int(round(share * len(xb)))
        if not m:
            return xb, yb
        extra = random_shift(pool[rng.integers(0, len(pool), m)], 2, rng)
        flip = rng.random(m) < 0.5   # mirror images of non-digits are non-digits too
        extra[flip] = extra[flip].reshape(-1, 28, 28)[:, :, ::-1].reshape(-1, 784)
        return np.concatenate([xb, extra]), np.concatenate([yb, np.full(m, -1, yb.dtype)])
    return hook
