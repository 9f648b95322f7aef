"""Decoded pixels of any mode -> uint8 grayscale, a block of rows at a time, optionally box-reduced.

No step holds a whole-image temporary beyond the output: 16-bit, float, alpha and palette images are
converted a block of about BLOCK pixels at a time (Pillow crops, numpy on the block), and each block is
reduced by the integer ``factor`` (Pillow's box ``reduce``) before the next one is read.
"""
from __future__ import annotations

import numpy as np

BLOCK = 1 << 18        # pixels per block: the int64 temporaries of a 16-bit block stay near 2 MB
MIN_CONTRAST = 32      # ink vs background levels below which a picture counts as blank (see to_mnist)
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _steps(h: int, w: int, factor: int):
    """(top, bottom) row ranges of about BLOCK pixels, each a multiple of ``factor`` rows, covering the
    rows a reduction by ``factor`` keeps."""
    step = max(1, BLOCK // max(1, w) // factor) * factor
    keep = h // factor * factor
    return [(top, min(top + step, keep)) for top in range(0, keep, step)]


def over(lum: np.ndarray, alpha: np.ndarray, black: bool = False) -> np.ndarray:
    """uint8 luminance and alpha -> uint8 composite over white (or black), rounded, within uint16.

    Over white: round((lum * alpha + 255 * (255 - alpha)) / 255) = (65152 - alpha * (255 - lum)) // 255.
    """
    a16 = alpha.astype(np.uint16)
    if black:
        out = lum.astype(np.uint16)
        out *= a16               # lum * alpha + 127 <= 65152
        out += 127
    else:
        out = np.subtract(255, lum, dtype=np.uint16)
        out *= a16               # alpha * (255 - lum) <= 65025
        np.subtract(65152, out, out=out)
    out //= 255
    return out.astype(np.uint8)


def hides_ink(alpha_max: int, gray_min: int) -> bool:
    """True when compositing over white left no contrast although something is opaque: light strokes
    on a transparent canvas, which must go over black instead."""
    return alpha_max > 0 and gray_min > 255 - MIN_CONTRAST


def composite(lum: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 (h, w) luminance and alpha -> (h, w) uint8 over white, or over black if white hides all ink."""
    h, w = lum.shape
    out = np.empty((h, w), np.uint8)
    spans = _steps(h, w, 1)
    for top, bottom in spans:
        out[top:bottom] = over(lum[top:bottom], alpha[top:bottom])
    if h and w and hides_ink(int(alpha.max()), int(out.min())):
        for top, bottom in spans:
            out[top:bottom] = over(lum[top:bottom], alpha[top:bottom], black=True)
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3 or 4) -> (h, w) uint8 with Pillow's RGB -> L: ITU-R 601-2 luma, 16-bit fixed point."""
    from PIL import Image

    h, w = rgb.shape[:2]
    out = np.empty((h, w), np.uint8)
    for top, bottom in _steps(h, w, 1):
        # Pillow's convert in C: (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16, alpha ignored.
        out[top:bottom] = np.asarray(Image.fromarray(np.ascontiguousarray(rgb[top:bottom])).convert("L"))
    return out


def reduce(g: np.ndarray, factor: int) -> np.ndarray:
    """uint8 (h, w) -> (h // factor, w // factor) box means (Pillow's reduce); ``g`` itself when factor 1."""
    if factor <= 1:
        return g
    from PIL import Image

    h, w = g.shape
    box = (0, 0, w // factor * factor, h // factor * factor)
    return np.asarray(Image.fromarray(np.ascontiguousarray(g)).reduce(factor, box))


def stored_gray(im, data, factor: int) -> np.ndarray | None:
    """uint8 (h // factor, w // factor) of an opened, unloaded Pillow image whose pixels lie in ``data``
    as they are (8-bit grey BMP and PGM: one raw tile), box-reduced straight from the file's bytes;
    None for any other image, or when ``data`` is too short (Pillow's decoder then says why)."""
    if im.mode != "L" or "transparency" in im.info or len(im.tile) != 1:
        return None
    name, box, offset, args = im.tile[0]
    args = (args,) if isinstance(args, str) else tuple(args)
    rawmode, stride, step = args[0], args[1] if len(args) > 1 else 0, args[2] if len(args) > 2 else 1
    w, h = im.size
    if name != "raw" or rawmode != "L" or tuple(box) != (0, 0, w, h) or step not in (1, -1):
        return None
    stride = stride or w
    if stride < w or offset + stride * h > len(data):
        return None
    from PIL import Image

    # Pillow maps the bytes (no copy); its reduce reads each row once.
    mapped = Image.frombuffer("L", (w, h), memoryview(data)[offset:offset + stride * h], "raw", "L",
                              stride, step)
    if factor <= 1:
        return np.array(mapped)
    return np.asarray(mapped.reduce(factor, (0, 0, w // factor * factor, h // factor * factor)))


def _float_scale(im) -> float:
    """F images: 255 when every value is <= 1 (a [0, 1] picture), else 1; NaN counts as 0."""
    w, h = im.size
    top = 0.0
    for a, b in _steps(h, w, 1):
        block = np.nan_to_num(np.asarray(im.crop((0, a, w, b)), dtype=np.float32))
        top = max(top, float(block.max()))
    return 255.0 if top <= 1.0 else 1.0


def _palette_tables(im):
    """(luma, alpha or None) uint8 (256,) lookup tables of a palette image, as Pillow's P -> RGBA -> LA."""
    rgb = np.zeros((256, 3), np.uint8)
    pal = np.frombuffer(bytes(im.getpalette("RGB") or b""), np.uint8)[:768]
    rgb[:pal.size // 3] = pal[:pal.size // 3 * 3].reshape(-1, 3)
    lum = luma(rgb[None])[0]
    t = im.info.get("transparency")
    if t is None:
        return lum, None
    alpha = np.full(256, 255, np.uint8)
    if isinstance(t, int):
        alpha[t & 255] = 0
    else:
        t = np.frombuffer(bytes(t), np.uint8)[:256]
        alpha[:t.size] = t
    return lum, alpha


def _converter(im):
    """A function: Pillow image block -> (uint8 gray block, alpha block or None) for ``im``'s mode."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":  # convert("L") would clip at 255 instead of scaling
        def conv(b):
            a = np.clip(np.asarray(b).astype(np.int64), 0, 65535)
            return ((a * 255 + 32767) // 65535).astype(np.uint8), None
    elif mode == "F":
        scale = _float_scale(im)

        def conv(b):
            a = np.nan_to_num(np.asarray(b, dtype=np.float32))
            return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8), None
    elif mode == "P" and im.palette is not None and im.palette.mode == "RGB":
        lum, alpha = _palette_tables(im)

        def conv(b):
            idx = np.asarray(b)
            return lum.take(idx), None if alpha is None else alpha.take(idx)
    elif mode in _ALPHA_MODES or "transparency" in im.info:
        def conv(b):
            la = np.asarray(b.convert("RGBA").convert("LA"))
            return la[..., 0], la[..., 1]
    elif mode == "L":
        def conv(b):
            return np.asarray(b), None
    else:
        def conv(b):
            return np.asarray(b.convert("L")), None
    return conv


def pil_to_gray(im, factor: int = 1) -> np.ndarray:
    """A loaded Pillow image of any mode -> uint8 (h // factor, w // factor) grayscale, transparency
    composited over white (over black when white hides all ink). Raises ValueError/OSError from Pillow
    for a mode it cannot convert."""
    w, h = im.size
    if factor == 1 and im.mode == "L" and "transparency" not in im.info:
        # What np.asarray(im) does, without building Pillow's __array_interface__ dict.
        return np.frombuffer(im.tobytes(), np.uint8).reshape(h, w)
    conv = _converter(im)
    out = np.empty((h // factor, w // factor), np.uint8)
    spans = _steps(h, w, factor)
    alpha_max, gray_min, alphas = 0, 255, False
    for top, bottom in spans:
        g, alpha = conv(im.crop((0, top, w, bottom)))
        if alpha is not None:
            alphas = True
            alpha_max = max(alpha_max, int(alpha.max()))
            g = over(g, alpha)
            gray_min = min(gray_min, int(g.min()))
        out[top // factor:bottom // factor] = reduce(g, factor)
    if alphas and hides_ink(alpha_max, gray_min):
        for top, bottom in spans:
            g, alpha = conv(im.crop((0, top, w, bottom)))
            out[top // factor:bottom // factor] = reduce(over(g, alpha, black=True), factor)
    return out
