"""Image bytes -> uint8 grayscale: the decoding half of turning a user's image into an MNIST digit.

``decode_image`` is the one entry point. Pillow decodes every accepted format (only those plugins are
registered). Plain 8-bit PNGs, the common upload, go through libspng (``pyspng``) instead when it is
installed: one C call instead of Pillow's Python-level chunk reader, with bit-identical pixels (tests
compare both paths). Both libraries are imported on first use, so the rest of mnistlite stays numpy-only.
"""
from __future__ import annotations

import functools
import struct
import zlib

import numpy as np

MAX_PIXELS = 4096 * 4096
# Raster formats we decode; others (EPS would run Ghostscript, PDF, ...) are refused.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")  # JPEG covers MPO
_EXIF_FORMATS = ("JPEG", "MPO", "WEBP", "TIFF")
_PLUGINS = ("Bmp", "Gif", "Jpeg", "Mpo", "Png", "Ppm", "Tiff", "WebP")  # Pillow modules for FORMATS
MIN_CONTRAST = 32     # ink vs background levels below which a picture counts as blank (see to_mnist)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# 8-bit PNG colour type -> the pyspng output format (its libspng has no grey+alpha output: RGBA then)
_PNG_MODES = {0: "L", 2: "RGB", 4: "RGBA", 6: "RGBA"}
_PILLOW_CHUNKS = (b"tRNS", b"acTL")   # transparency, animation: Pillow's handling applies
_CHUNK = struct.Struct(">I4s")
_CRC = struct.Struct(">I")


class ImageError(ValueError):
    """Bytes that are not a usable image (empty, unknown format, truncated, odd mode); one-line message."""


class ImageTooLarge(ImageError):
    """The image header declares more pixels than allowed; raised before pixels are decoded."""


def _why(e: BaseException) -> str:
    """An exception as ``Type: message`` on one line, for ImageError messages."""
    return " ".join(f"{type(e).__name__}: {e}".split())


@functools.cache
def _pillow():
    """Pillow's Image module with exactly the accepted formats' plugins registered.

    Importing them by name keeps Image.open from calling Image.init(), which imports every plugin
    Pillow has (~40 modules, paid in every service's cold start).
    """
    import importlib

    from PIL import Image

    for plugin in _PLUGINS:
        importlib.import_module(f"PIL.{plugin}ImagePlugin")
    return Image


def _open_image(data, *, max_side: int, max_pixels: int, formats, size=None):
    """Open ``data`` with Pillow reading only the header; check size limits; return the unloaded image."""
    import io

    Image = _pillow()
    if not data:
        raise ImageError("empty file")
    try:
        im = Image.open(io.BytesIO(data), formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"image too large ({_why(e)})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"not an image (unrecognised format; accepted: {', '.join(formats)})") from None
    except Exception as e:  # plugin parsers raise SyntaxError, struct.error, ValueError... on junk
        raise ImageError(f"truncated or corrupt image ({_why(e)})") from None
    w, h = im.size
    if size is not None and (w, h) != size:
        raise ImageError(f"size {w}x{h}, expected {size[0]}x{size[1]}")
    if w > max_side or h > max_side or w * h > max_pixels:
        raise ImageTooLarge(f"image is {w}x{h} pixels; limit is {max_side} per side and {max_pixels} in all")
    if w < 1 or h < 1:
        raise ImageError(f"image has no pixels ({w}x{h})")
    return im


def _load(im) -> None:
    """Decode the pixels of an opened image, turning every decoder failure into ImageError."""
    from PIL import Image

    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"image too large ({_why(e)})") from None
    except Exception as e:  # OSError "image file is truncated", SyntaxError "broken PNG file", ...
        raise ImageError(f"truncated or corrupt image ({_why(e)})") from None


def _composite(lum: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 (h, w) luminance and alpha -> (h, w) uint8 over white, or over black if white hides all ink.

    Over white: round((lum * alpha + 255 * (255 - alpha)) / 255) = (65152 - alpha * (255 - lum)) // 255,
    every term within uint16, so a 4096x4096 upload needs a few 32 MB temporaries, not 64 MB uint32 ones.
    """
    a16 = alpha.astype(np.uint16)
    out = np.subtract(255, lum, dtype=np.uint16)
    out *= a16                   # alpha * (255 - lum) <= 65025
    np.subtract(65152, out, out=out)
    out //= 255
    if alpha.max() and out.min() > 255 - MIN_CONTRAST:  # light strokes on a transparent canvas
        out = lum.astype(np.uint16)
        out *= a16               # lum * alpha + 127 <= 65152
        out += 127
        out //= 255
    return out.astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3 or 4) -> (h, w) uint8 with Pillow's RGB -> L: ITU-R 601-2 luma, 16-bit fixed point.

    Computed in blocks of rows so the uint32 temporaries stay near 4 MB whatever the image size.
    """
    h, w = rgb.shape[:2]
    out = np.empty((h, w), np.uint8)
    step = max(1, (1 << 18) // w)
    for top in range(0, h, step):
        c = rgb[top:top + step].astype(np.uint32)
        out[top:top + step] = (c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16
    return out


def _pil_to_gray(im) -> np.ndarray:
    """A loaded Pillow image of any mode -> uint8 (h, w) grayscale (maybe read-only), transparency
    composited."""
    mode = im.mode
    if mode == "L" and "transparency" not in im.info:
        # What np.asarray(im) does, without building Pillow's __array_interface__ dict.
        return np.frombuffer(im.tobytes(), np.uint8).reshape(im.height, im.width)
    if mode.startswith("I;16") or mode == "I":  # convert("L") would clip at 255 instead of scaling
        a = np.clip(np.asarray(im).astype(np.int64), 0, 65535)
        return ((a * 255 + 32767) // 65535).astype(np.uint8)
    if mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float32))
        scale = 255.0 if a.size and a.max() <= 1.0 else 1.0
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    try:
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
            la = np.asarray(im.convert("RGBA").convert("LA"))
            return _composite(la[..., 0], la[..., 1])
        return np.asarray(im.convert("L"))
    except (ValueError, OSError) as e:
        raise ImageError(f"image mode {mode} cannot be converted to grayscale ({_why(e)})") from None


@functools.cache
def _spng():
    """The pyspng module, or None when it is not installed (then Pillow decodes every PNG)."""
    try:
        import pyspng
    except ImportError:
        return None
    return pyspng


def _plain_png(data, max_side: int, max_pixels: int) -> np.ndarray | None:
    """uint8 (h, w) grayscale of a plain PNG via libspng, or None to leave the file to Pillow.

    Plain: 8-bit grey, RGB, grey+alpha or RGBA within the size limits, every chunk complete with a
    valid CRC, no tRNS (transparency) or acTL (animation), nothing after IEND. pyspng ignores CRC
    errors, so they are checked here; any other PNG (palette, 16-bit, damaged, oversized) goes to
    Pillow, which gives the error or the special handling. Grey and alpha match Pillow's exactly.
    """
    spng = _spng()
    if spng is None or len(data) < 45 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack_from(">II", data, 16)
    mode = _PNG_MODES.get(data[25]) if data[24] == 8 else None
    if mode is None or not (0 < w <= max_side and 0 < h <= max_side and w * h <= max_pixels):
        return None
    view, pos, end = memoryview(data), 8, len(data)
    while True:
        if pos + 12 > end:
            return None
        length, kind = _CHUNK.unpack_from(data, pos)
        stop = pos + 12 + length
        if stop > end or kind in _PILLOW_CHUNKS:
            return None
        if zlib.crc32(view[pos + 4:stop - 4]) != _CRC.unpack_from(data, stop - 4)[0]:
            return None
        pos = stop
        if kind == b"IEND":
            break
    if pos != end:
        return None
    try:
        a = spng.load(data, mode)
    except (RuntimeError, ValueError, TypeError):  # libspng refuses it (or not bytes): Pillow says why
        return None
    if mode == "L":
        return a
    if data[25] == 4:  # grey + alpha, expanded to RGBA: R = G = B is the grey itself
        return _composite(a[..., 0], a[..., 3])
    luma = _luma(a)
    return luma if mode == "RGB" else _composite(luma, a[..., 3])


def _draft_size(w: int, h: int, reduce: int):
    """The size to ask libjpeg's DCT scaling for: the smallest of 1/2, 1/4, 1/8 keeping >= ``reduce``
    a side."""
    k = 1
    while k < 8 and max(w, h) // (2 * k) >= reduce:
        k *= 2
    return None if k == 1 else (-(-w // k), -(-h // k))


def _decode_pillow(data, max_side: int, max_pixels: int = MAX_PIXELS, reduce: int = 0, formats=FORMATS,
                   size=None) -> np.ndarray:
    """Any accepted format via Pillow -> uint8 (h, w) grayscale (maybe read-only); see decode_image."""
    im = _open_image(data, max_side=max_side, max_pixels=max_pixels, formats=formats, size=size)
    if im.format in ("JPEG", "MPO"):
        draft = _draft_size(*im.size, reduce) if reduce and size is None else None
        if im.mode != "L" or draft:
            im.draft("L", draft)  # libjpeg hands over the luma channel directly: no colour conversion
    _load(im)
    if im.format in _EXIF_FORMATS and im.getexif().get(0x0112, 1) not in (1, None):
        from PIL import ImageOps

        im = ImageOps.exif_transpose(im)
    return _pil_to_gray(im)


def decode_image(data: bytes, *, max_side: int = 4096, max_pixels: int = MAX_PIXELS, formats=FORMATS,
                 size: tuple[int, int] | None = None, reduce: int = 0, copy: bool = True) -> np.ndarray:
    """Decode image bytes (PNG, JPEG, GIF, BMP, WebP, TIFF, PPM) -> uint8 (h, w) grayscale.

    EXIF orientation is applied; transparency is composited onto white (black if the ink is white).
    Raises ImageTooLarge (from the header, before decoding) or ImageError with a one-line reason.
    ``formats``: the accepted subset of FORMATS. ``size``: the exact (width, height) required, checked
    from the header before the limits (ImageError "size 30x28, expected 28x28").
    ``reduce`` > 0 (without ``size``): a JPEG may decode at 1/2, 1/4 or 1/8 scale (libjpeg's draft
    mode) while its longest side stays >= ``reduce``, so (h, w) can be smaller than the file's.
    ``copy=False`` may return the decoder's read-only buffer, for callers that only read the pixels.
    """
    if formats is not FORMATS:
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise ValueError(f"formats must be among {', '.join(FORMATS)}, "
                             f"got {', '.join(map(str, unknown))}")
    if size is None:
        a = _plain_png(data, max_side, max_pixels) if "PNG" in formats else None
    else:
        size = (int(size[0]), int(size[1]))
        a = _plain_png(data, max(size), size[0] * size[1]) if "PNG" in formats else None
    if a is None or (size is not None and a.shape != (size[1], size[0])):
        a = _decode_pillow(data, max_side, max_pixels, reduce, formats, size)
    return a if not copy or a.flags.writeable else a.copy()
