"""Crafted files for the abuse suite (abuse_cases.py): pictures that defeat each preprocessing stage, and
files Pillow cannot write or that exploit a reader: hand-made PNG chunks and bit depths, a huge TIFF
directory, RLE BMP, plain-text PGM, many-scan JPEG, GIF comment blocks, one-byte PNG chunks.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

# --------------------------------------------------------------------------------------------- pictures

def picture(shape: str, w: int, h: int, seed: int = 0) -> np.ndarray:
    """uint8 (h, w) grey picture of ``shape``: margin | lines | noise | checker | digit."""
    if shape == "margin":      # a flat 12 px margin around one dark block: skips the photo cleaning
        a = np.full((h, w), 255, np.uint8)
        a[12:-12, 12:-12] = 20
    elif shape == "lines":     # 1 px lines every 64 px over a white page, a block in the middle
        a = np.full((h, w), 255, np.uint8)
        a[::64] = 0
        a[:, ::64] = 0
        a[h // 3:2 * h // 3, w // 3:2 * w // 3] = 0
    elif shape == "noise":
        a = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    elif shape == "checker":
        a = ((np.indices((h, w)).sum(axis=0) & 1) * 255).astype(np.uint8)
    elif shape == "digit":     # a thick "7" of a pen stroke's proportions on white
        a = np.full((h, w), 255, np.uint8)
        t = max(1, min(w, h) // 12)
        a[h // 5:h // 5 + t, w // 4:3 * w // 4] = 30
        for i in range(h // 5, 4 * h // 5):
            x = 3 * w // 4 - (i - h // 5) * (w // 2) // (3 * h // 5)
            a[i, max(0, x - t // 2):x + t // 2 + 1] = 30
    else:
        raise ValueError(f"shape must be margin, lines, noise, checker or digit, got {shape!r}")
    return a


def save(im: Image.Image, fmt: str, **kw) -> bytes:
    """``im`` saved as ``fmt`` (Pillow's save options ``kw``) -> the file's bytes."""
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------------------------- hand-made PNGs

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(w: int, h: int, depth: int, colour: int, row: bytes, *, interlace: int = 0,
            extra: tuple = (), filter_type: int = 0) -> bytes:
    """A PNG whose every scanline (of every Adam7 pass) is ``filter_type`` + ``row`` cut to its length
    (filters 3 and 4, average and Paeth, are the slowest to undo).

    Any bit depth and colour type Pillow cannot write (16-bit RGB(A), grey+alpha...); ``extra`` chunks go
    before IDAT. Compressed row by row, so a 4096x4096 16-bit file is built without a 128 MB buffer.
    """
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    z = zlib.compressobj(9)
    out = []
    adam7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    passes = adam7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        pw, ph = -(-(w - x0) // dx), -(-(h - y0) // dy)
        if pw <= 0 or ph <= 0:
            continue
        n = -(-pw * channels * depth // 8)
        line = bytes([filter_type]) + (row * (n // len(row) + 1))[:n]
        for _ in range(ph):
            out.append(z.compress(line))
    out.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(extra)
            + _chunk(b"IDAT", b"".join(out)) + _chunk(b"IEND", b""))


def ztxt_png(n: int = 64) -> bytes:
    """A 28x28 PNG carrying ``n`` zTXt chunks of 1 MB of text each (about 1 KB each compressed)."""
    text = zlib.compress(b"a" * (1 << 20), 9)
    chunks = tuple(_chunk(b"zTXt", b"k%d\0\0" % i + text) for i in range(n))
    return raw_png(28, 28, 8, 0, b"\xff", extra=chunks)


# --------------------------------------------------------------------------------- other formats

def tiff_big_ifd(entries: int = 60000) -> bytes:
    """A little-endian TIFF whose first IFD has ``entries`` private tags (Pillow parses each in Python)."""
    w = h = 8
    head = b"II*\0" + struct.pack("<I", 8)
    tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, h), (279, 4, 1, w * h)]
    tags += [(50000 + i % 15000, 3, 1, 0) for i in range(max(0, entries - len(tags)))]
    tags.sort(key=lambda t: t[0])
    ifd_size = 2 + 12 * len(tags) + 4
    data_at = 8 + ifd_size
    ifd = struct.pack("<H", len(tags))
    for tag, typ, count, value in tags:
        value = data_at if tag == 273 else value
        ifd += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3
                                                         else struct.pack("<I", value))
    return head + ifd + b"\0\0\0\0" + bytes(w * h)


def bmp_rle8(w: int, h: int) -> bytes:
    """An 8-bit RLE BMP of a white page: runs of 255 pixels, two bytes each (about w*h/127 bytes)."""
    row = b"".join(b"\xff\x01" for _ in range(w // 255)) + (bytes([w % 255, 1]) if w % 255 else b"")
    pixels = (row + b"\0\0") * h + b"\0\1"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return head + info + palette + pixels


def plain_pgm(w: int, h: int) -> bytes:
    """A plain-text (P2) PGM of a white page with a dark block: one token per pixel."""
    a = picture("margin", w, h)
    body = "\n".join(" ".join(map(str, r)) for r in (a // 128 * 9).tolist())
    return f"P2\n{w} {h}\n9\n".encode() + body.encode()


def jpeg_many_scans(n: int = 2000) -> bytes:
    """A progressive grey JPEG whose last refinement scan is repeated ``n`` times (each scan is a pass)."""
    data = save(Image.fromarray(picture("digit", 1024, 1024)), "JPEG", progressive=True, quality=90)
    last = data.rfind(b"\xff\xda")
    return data[:last] + data[last:-2] * n + b"\xff\xd9"


def gif_comments(n: int = 60000) -> bytes:
    """A 64x64 GIF preceded by a comment of ``n`` 255-byte sub-blocks (Pillow reads and keeps them all)."""
    g = save(Image.fromarray(picture("digit", 64, 64)), "GIF")
    head = 13 + (3 << ((g[10] & 7) + 1) if g[10] & 0x80 else 0)
    return g[:head] + b"\x21\xfe" + (b"\xff" + b"c" * 255) * n + b"\0" + g[head:]


def png_tiny_chunks(side: int = 1000) -> bytes:
    """A grey noise PNG whose compressed data is cut into 1-byte IDAT chunks (a Python step per chunk)."""
    data = save(Image.fromarray(picture("noise", side, side)), "PNG", compress_level=1)
    pos, body = 8, b""
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        if data[pos + 4:pos + 8] == b"IDAT":
            body += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    chunks = b"".join(_chunk(b"IDAT", body[i:i + 1]) for i in range(len(body)))
    return data[:33] + chunks + _chunk(b"IEND", b"")
