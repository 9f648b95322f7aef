"""A photo-like JPEG of a digit: dark ink on paper lit unevenly, a little blur and sensor noise."""
from __future__ import annotations

import io

import numpy as np
from page_strokes import paths
from PIL import Image, ImageDraw, ImageFilter


def photo_jpeg(digit: int, size=(1200, 900), seed: int = 0, quality: int = 85) -> bytes:
    """JPEG bytes of ``digit`` written with a felt pen on paper, photographed (landscape ``size``)."""
    w, h = size
    rng = np.random.default_rng(seed)
    # Paper: brighter towards the top left where the light is, a soft vignette, warm white.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 236 - 38 * (0.6 * xx / w + 0.4 * yy / h) - 14 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
    paper = np.stack([light, light - 4, light - 12], axis=-1)
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8), "RGB")
    # The digit, as the page's strokes, in the middle half of the picture's height.
    draw = ImageDraw.Draw(img)
    side = int(h * 0.9)
    x0, y0, width = (w - side) / 2, (h - side) / 2, max(3, int(side * 0.055))
    for stroke in paths(digit):
        pts = [(x0 + x * side, y0 + y * side) for x, y in stroke]
        draw.line(pts, fill=(38, 42, 58), width=width, joint="curve")
        for px, py in (pts[0], pts[-1]):
            draw.ellipse((px - width / 2, py - width / 2, px + width / 2, py + width / 2), fill=(38, 42, 58))
    img = img.filter(ImageFilter.GaussianBlur(1.6))
    noisy = np.asarray(img, np.float32) + rng.normal(0, 3.0, (h, w, 1)).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()
