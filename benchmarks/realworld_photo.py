"""Photo-like renderings of MNIST test digits: ink on paper, photographed, saved as JPEG.

A digit is drawn as pen or marker strokes (black or blue ink, or chalk on a dark board), placed
somewhere in the frame, and lit by an uneven, tinted light with an optional hard shadow and page
edge; then sensor grain and JPEG compression. Everything at full resolution runs in Pillow's C code,
so a 12-megapixel frame renders in well under a second.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

RESOLUTIONS = ((640, 480), (1280, 960), (2592, 1944), (4032, 3024))
INKS = {"black": (28, 28, 36), "blue": (30, 55, 165)}


@dataclass(frozen=True)
class Photo:
    """One photo condition: frame size, ink, pen or marker, shadow, rotation, JPEG quality, polarity."""
    size: tuple = (1280, 960)
    ink: str = "any"          # black | blue | any
    pen: str = "any"          # pen | marker | any
    shadow: float = 0.4       # probability of a hard shadow across the frame
    rotation: float = 8.0     # max degrees of digit rotation
    quality: tuple = (70, 95)  # JPEG quality range
    dark_board: bool = False  # light chalk on a dark board instead of ink on paper
    page_edge: float = 0.3    # probability the frame shows the table beyond the page edge


def _strokes(digit, rng, pen):
    """Soft ink coverage in [0, 255] of one digit at 112 px, thinned (pen) or thickened (marker)."""
    im = Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC)
    if pen == "pen":   # ballpoint: a 1/3 to 1/2 of MNIST's stroke width
        im = im.filter(ImageFilter.MinFilter(int(rng.choice([5, 7]))))
        im = im.point(lambda v: 255 if v > 60 else v * 4)
    else:              # felt marker: MNIST's width or a bit more, solid
        im = im.filter(ImageFilter.MaxFilter(int(rng.choice([1, 3, 5]))))
        im = im.point(lambda v: min(255, v * 2))
    return im.filter(ImageFilter.GaussianBlur(1.0))


def _light(w, h, rng, cfg):
    """Illumination 'L' image at full size from a coarse field: gradient, vignette, maybe a hard shadow."""
    cw, ch = 64, 48
    yy, xx = np.mgrid[0:ch, 0:cw] / np.array([ch, cw])[:, None, None]
    a = rng.uniform(0, 2 * np.pi)
    grad = 1 - rng.uniform(0.15, 0.45) * ((np.cos(a) * xx + np.sin(a) * yy) + 1) / 2
    vign = 1 - rng.uniform(0.0, 0.3) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 2
    field = grad * vign * rng.uniform(0.8, 1.0)
    im = Image.fromarray(np.uint8(np.clip(field * 255, 0, 255))).resize((w, h), Image.Resampling.BILINEAR)
    if rng.random() < cfg.shadow:   # a phone's or hand's shadow: a soft-edged polygon, 45-70% light
        sh = Image.new("L", (w // 8, h // 8), 255)
        cx, cy = rng.uniform(0, w // 8), rng.uniform(0, h // 8)
        r = rng.uniform(0.3, 0.8) * w // 8
        pts = [(cx + r * np.cos(t), cy + r * np.sin(t)) for t in np.sort(rng.uniform(0, 2 * np.pi, 5))]
        ImageDraw.Draw(sh).polygon(pts, fill=int(255 * rng.uniform(0.45, 0.7)))
        sh = sh.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))
        sh = sh.resize((w, h), Image.Resampling.BILINEAR)
        im = ImageChops.multiply(im, sh)
    return im


def render(digit, rng, cfg: Photo) -> bytes:
    """One MNIST digit (uint8 (28, 28), white on black) -> JPEG bytes of a photo of it."""
    w, h = cfg.size
    ink_name = cfg.ink if cfg.ink != "any" else str(rng.choice(list(INKS)))
    pen = cfg.pen if cfg.pen != "any" else str(rng.choice(["pen", "marker"]))
    strokes = _strokes(digit, rng, pen)
    if cfg.rotation:
        strokes = strokes.rotate(rng.uniform(-cfg.rotation, cfg.rotation), Image.Resampling.BILINEAR)
    side = int(h * rng.uniform(0.2, 0.55))   # the digit's 28-px field spans 20-55% of the frame height
    strokes = strokes.resize((side, side), Image.Resampling.BILINEAR)
    if cfg.dark_board:
        paper = tuple(int(v) for v in rng.integers(35, 75, 3))
        ink = tuple(int(v) for v in rng.integers(200, 240, 3))
    else:
        paper = (int(rng.integers(215, 250)), int(rng.integers(210, 245)), int(rng.integers(195, 235)))
        ink = INKS[ink_name]
    refl = Image.new("RGB", (w, h), paper)
    if rng.random() < cfg.page_edge:   # the table beyond the page along one side
        table = tuple(int(v) for v in rng.integers(40, 140, 3))
        edge = int(rng.uniform(0.03, 0.12) * (w if rng.random() < 0.5 else h))
        box = [(0, 0, edge, h), (w - edge, 0, w, h), (0, 0, w, edge), (0, h - edge, w, h)][rng.integers(4)]
        ImageDraw.Draw(refl).rectangle(box, fill=table)
    x0 = int(rng.uniform(0.15 * w, 0.85 * w - side))
    y0 = int(rng.uniform(0.12 * h, 0.88 * h - side))
    refl.paste(Image.new("RGB", (side, side), ink), (x0, y0), strokes)
    light = _light(w, h, rng, cfg)
    tint = tuple(float(t) for t in rng.uniform(0.85, 1.0, 3))
    lit = ImageChops.multiply(refl, Image.merge("RGB", [light.point(lambda v, t=t: v * t) for t in tint]))
    grain = Image.effect_noise((w, h), float(rng.uniform(3, 9))).convert("RGB")
    photo = ImageChops.add(lit, grain, 1.0, -128)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=int(rng.integers(cfg.quality[0], cfg.quality[1] + 1)))
    return buf.getvalue()
