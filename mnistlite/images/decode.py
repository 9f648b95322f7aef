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

from . import decode_cost, gray_blocks
from .gray_blocks import MIN_CONTRAST  # noqa: F401 - preprocess imports it from here

MAX_PIXELS = 4096 * 4096
# Raster formats we decode; others (EPS would run Ghostscript, PDF, ...) are refused.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")  # JPEG covers MPO
_EXIF_FORMATS = ("JPEG", "MPO", "WEBP", "TIFF")
_PLUGINS = ("Bmp", "Gif", "Jpeg", "Mpo", "Png", "Ppm", "Tiff", "WebP")  # Pillow modules for FORMATS
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# 8-bit PNG colour type -> the pyspng output format (its libspng has no grey+alpha output: RGBA then)
_PNG_MODES = {0: "L", 2: "RGB", 4: "RGBA", 6: "RGBA"}
_PILLOW_CHUNKS = (b"tRNS", b"acTL")   # transparency, animation: Pillow's handling applies
_ZLIB_CHUNKS = (b"zTXt", b"iTXt", b"iCCP")  # libspng inflates these with no limit: Pillow's limits apply
_MAX_ZLIB_CHUNKS = 2048                # compressed bytes of those left to libspng (<= ~2 MB inflated)
_CHUNK = struct.Struct(">I4s")
_CRC = struct.Struct(">I")
_MAX_TEXT = 256 << 10   # bytes one PNG text or ICC chunk may inflate to (four times that in all)


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
    # PNG text and ICC chunks are inflated while the header is read, up to 64 MiB per file by default: a
    # few KB of zTXt would cost that much memory and CPU before any budget is checked.
    from PIL import PngImagePlugin

    PngImagePlugin.MAX_TEXT_CHUNK = min(PngImagePlugin.MAX_TEXT_CHUNK, _MAX_TEXT)
    PngImagePlugin.MAX_TEXT_MEMORY = min(PngImagePlugin.MAX_TEXT_MEMORY, 4 * _MAX_TEXT)
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
        if "PngImagePlugin.MAX_TEXT" in str(e) or "memory used in text chunks" in str(e):
            raise ImageTooLarge("PNG metadata (text or ICC chunks) inflates to more than "
                                f"{_MAX_TEXT >> 10} KB: save the image without metadata") from None
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


_composite = gray_blocks.composite
_luma = gray_blocks.luma


def _pil_to_gray(im, factor: int = 1) -> np.ndarray:
    """A loaded Pillow image of any mode -> uint8 (h // factor, w // factor) grayscale (maybe read-only),
    transparency composited, converted a block of rows at a time (gray_blocks)."""
    try:
        return gray_blocks.pil_to_gray(im, factor)
    except (ValueError, OSError) as e:
        raise ImageError(f"image mode {im.mode} cannot be converted to grayscale ({_why(e)})") from None


def _factor(w: int, h: int, reduce: int) -> int:
    """The integer box reduction keeping the longest side >= ``reduce`` (1: none), never emptying a side."""
    return max(1, min(max(w, h) // reduce, w, h)) if reduce else 1


def _orient(g: np.ndarray, orientation: int) -> np.ndarray:
    """uint8 (h, w) turned upright from EXIF ``orientation`` (1..8), as ImageOps.exif_transpose does."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.T,
             6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).T, 8: lambda a: np.rot90(a)}
    turn = turns.get(orientation)
    return g if turn is None else np.ascontiguousarray(turn(g))


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
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    # libspng's whole array, then the grey plane (luma and composite run in row blocks).
    if decode_cost.over_budget("", w * h * (channels + (channels > 1)), decode_cost.png_work(data, w, h)):
        return None   # Pillow's path checks the same budgets and says why
    view, pos, end, zipped = memoryview(data), 8, len(data), 0
    while True:
        if pos + 12 > end:
            return None
        length, kind = _CHUNK.unpack_from(data, pos)
        stop = pos + 12 + length
        if stop > end or kind in _PILLOW_CHUNKS:
            return None
        if zlib.crc32(view[pos + 4:stop - 4]) != _CRC.unpack_from(data, stop - 4)[0]:
            return None
        if kind in _ZLIB_CHUNKS:
            zipped += length
            if zipped > _MAX_ZLIB_CHUNKS:
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


def _exif_orientation(im) -> int:
    """EXIF orientation (1..8) of an opened image, from the header already read."""
    if im.format == "TIFF":
        value = im.tag_v2.get(0x0112, 1)
        return value if isinstance(value, int) and 1 <= value <= 8 else 1
    if im.format in _EXIF_FORMATS:
        return decode_cost.orientation(im.info.get("exif"))
    return 1


def _decode_pillow(data, max_side: int, max_pixels: int = MAX_PIXELS, reduce: int = 0, formats=FORMATS,
                   size=None) -> np.ndarray:
    """Any accepted format via Pillow -> uint8 (h, w) grayscale (maybe read-only); see decode_image."""
    im = _open_image(data, max_side=max_side, max_pixels=max_pixels, formats=formats, size=size)
    draft = None
    if im.format in ("JPEG", "MPO"):
        draft = _draft_size(*im.size, reduce) if reduce and size is None else None
    why = decode_cost.check(im, data, draft)
    if why:
        raise ImageTooLarge(why)
    if im.format in ("JPEG", "MPO") and (im.mode != "L" or draft):
        im.draft("L", draft)  # libjpeg hands over the luma channel directly: no colour conversion
    orientation = _exif_orientation(im)
    if size is None:
        stored = gray_blocks.stored_gray(im, data, _factor(*im.size, reduce))
        if stored is not None:   # 8-bit grey BMP, PGM: reduced from the file's bytes, never decoded whole
            return _orient(stored, orientation)
    _load(im)
    return _orient(_pil_to_gray(im, 1 if size else _factor(*im.size, reduce)), orientation)


def decode_image(data: bytes, *, max_side: int = 4096, max_pixels: int = MAX_PIXELS, formats=FORMATS,
                 size: tuple[int, int] | None = None, reduce: int = 0, copy: bool = True) -> np.ndarray:
    """Decode image bytes (PNG, JPEG, GIF, BMP, WebP, TIFF, PPM) -> uint8 (h, w) grayscale.

    EXIF orientation is applied; transparency is composited onto white (black if the ink is white).
    Raises ImageTooLarge (from the header, before decoding: over the size limits, or over the decode
    budgets of ``decode_cost``) or ImageError with a one-line reason.
    ``formats``: the accepted subset of FORMATS. ``size``: the exact (width, height) required, checked
    from the header before the limits (ImageError "size 30x28, expected 28x28").
    ``reduce`` > 0 (without ``size``): a big image is decoded smaller, its longest side kept >= ``reduce``:
    a JPEG at 1/2, 1/4 or 1/8 scale (libjpeg's draft mode), then any format by an integer box filter.
    ``copy=False`` may return the decoder's read-only buffer, for callers that only read the pixels.
    """
    if formats is not FORMATS:
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise ValueError(f"formats must be among {', '.join(FORMATS)}, "
                             f"got {', '.join(map(str, unknown))}")
    why = decode_cost.check_bytes(data)   # before libspng or Pillow parse anything
    if why:
        raise ImageTooLarge(why)
    if size is None:
        a = _plain_png(data, max_side, max_pixels) if "PNG" in formats else None
        if a is not None:
            a = gray_blocks.reduce(a, _factor(a.shape[1], a.shape[0], reduce))
    else:
        size = (int(size[0]), int(size[1]))
        a = _plain_png(data, max(size), size[0] * size[1]) if "PNG" in formats else None
    if a is None or (size is not None and a.shape != (size[1], size[0])):
        a = _decode_pillow(data, max_side, max_pixels, reduce, formats, size)
    return a if not copy or a.flags.writeable else a.copy()
