"""Crafted uploads for benchmarks/bench_abuse.py and tests/test_abuse.py: small on the wire, costly to read.

Every case fits the service's body limit. Kinds cover each accepted format and its odd modes (PNG
1/8/16-bit grey, RGB, RGBA, palette, interlaced, animated, text chunks; JPEG baseline, progressive,
CMYK, grey noise, a 12 MP photo; WebP still and animated; TIFF float, 16-bit, multipage, huge IFD;
GIF multi-frame; BMP raw and RLE; PNM binary, 16-bit and plain text; refused formats such as ICO)
and pictures that defeat each stage (flat margins around a dark block, thin lines, noise,
checkerboards). ``probe`` runs one call in a forked child and reports its CPU time and extra peak RSS.
"""
from __future__ import annotations

import ctypes
import io
import os
import resource
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

BODY_LIMIT = 16 << 20   # the service's default max_body_bytes


@dataclass(frozen=True)
class Case:
    """One upload: ``kind`` groups cases for the report (format and mode), ``data`` is the body."""
    name: str
    kind: str
    data: bytes


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


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------------------------- hand-made PNGs

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(w: int, h: int, depth: int, colour: int, row: bytes, *, interlace: int = 0,
            extra: tuple = ()) -> bytes:
    """A PNG whose every scanline (of every Adam7 pass) is filter 0 + ``row`` cut to its length.

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
        line = b"\0" + (row * (n // len(row) + 1))[:n]
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
    data = _save(Image.fromarray(picture("digit", 1024, 1024)), "JPEG", progressive=True, quality=90)
    last = data.rfind(b"\xff\xda")
    return data[:last] + data[last:-2] * n + b"\xff\xd9"


# ------------------------------------------------------------------------------------------- cases

def _png(a, mode=None, **kw) -> bytes:
    im = Image.fromarray(a)
    return _save(im if mode is None else im.convert(mode), "PNG", compress_level=kw.pop("level", 9), **kw)


def _big(side: int = 4096):
    return picture("margin", side, side)


def _photo() -> bytes:
    """A 12 MP (4032x3024) phone-photo JPEG from the photo suite's renderer (an MNIST-like "7")."""
    import realworld_photo as rp

    digit = np.zeros((28, 28), np.uint8)
    digit[6:9, 6:22] = 255
    for i in range(9, 24):
        digit[i, 20 - (i - 9) // 2:23 - (i - 9) // 2] = 255
    return rp.render(digit, np.random.default_rng(0), rp.Photo(size=(4032, 3024)))


def _makers() -> dict:
    m = _big(4096)
    m4000 = _big(4000)
    anim = [Image.fromarray(np.roll(m, k * 64, axis=1)) for k in range(10)]
    return {
        # PNG
        "png-L-margin-4000": ("png L", lambda: _png(m4000)),
        "png-L-lines-4096": ("png L", lambda: _png(picture("lines", 4096, 4096))),
        "png-L-checker-4096": ("png L", lambda: _png(picture("checker", 4096, 4096))),
        "png-L-noise-4000": ("png L", lambda: _png(picture("noise", 4000, 4000), level=1)),
        "png-1bit-4096": ("png 1-bit", lambda: _png(m, "1")),
        "png-I16-4096": ("png 16-bit", lambda: raw_png(4096, 4096, 16, 0, b"\x12\x34")),
        "png-RGB16-4096": ("png 16-bit", lambda: raw_png(4096, 4096, 16, 2, b"\x80\x00\x10\x00\xff\xff")),
        "png-RGBA16-4096": ("png 16-bit", lambda: raw_png(4096, 4096, 16, 6, b"\x80\0\x10\0\xff\xff\x80\0")),
        "png-RGB-4096": ("png RGB/RGBA", lambda: _png(m, "RGB")),
        "png-RGBA-4096": ("png RGB/RGBA", lambda: raw_png(4096, 4096, 8, 6, b"\x10\x20\x30\x80")),
        "png-LA-4096": ("png RGB/RGBA", lambda: raw_png(4096, 4096, 8, 4, b"\x10\x80")),
        "png-P-4096": ("png palette", lambda: _png(m, "P")),
        "png-P-trns-4096": ("png palette", lambda: _png(m, "P", transparency=255)),
        "png-L-interlaced-4096": ("png interlaced", lambda: raw_png(4096, 4096, 8, 0, b"\xf0", interlace=1)),
        "png-RGBA16-interlaced-4096": ("png interlaced",
                                       lambda: raw_png(4096, 4096, 16, 6, b"\x10\x00\x20\x00", interlace=1)),
        "png-zTXt-64MB": ("png text", ztxt_png),
        "png-1M-chunks": ("png chunks", png_tiny_chunks),
        "apng-4096x10": ("png animated", lambda: _save(anim[0], "PNG", save_all=True,
                                                        append_images=anim[1:])),
        # JPEG
        "jpeg-L-margin-4000": ("jpeg", lambda: _save(Image.fromarray(m4000), "JPEG", quality=90)),
        "jpeg-RGB-4096": ("jpeg", lambda: _save(Image.fromarray(m).convert("RGB"), "JPEG", quality=90)),
        "jpeg-L-noise-4096": ("jpeg", lambda: _save(Image.fromarray(picture("noise", 4096, 4096)), "JPEG",
                                                     quality=85)),
        "jpeg-progressive-4096": ("jpeg progressive", lambda: _save(Image.fromarray(m).convert("RGB"), "JPEG",
                                                                    quality=90, progressive=True)),
        "jpeg-progressive444-4096": ("jpeg progressive", lambda: _save(
            Image.fromarray(m).convert("RGB"), "JPEG", progressive=True, subsampling=0)),
        "jpeg-many-scans": ("jpeg progressive", jpeg_many_scans),
        "jpeg-CMYK-4096": ("jpeg CMYK", lambda: _save(Image.fromarray(m).convert("CMYK"), "JPEG")),
        "jpeg-CMYK-progressive-4096": ("jpeg CMYK", lambda: _save(Image.fromarray(m).convert("CMYK"), "JPEG",
                                                                  progressive=True)),
        "jpeg-photo-4032x3024": ("jpeg photo", _photo),
        # WebP
        "webp-anim-4096x10": ("webp", lambda: _save(anim[0], "WEBP", save_all=True, append_images=anim[1:],
                                                    lossless=True)),
        "webp-lossless-4096": ("webp", lambda: _save(Image.fromarray(m), "WEBP", lossless=True)),
        "webp-lossy-4096": ("webp", lambda: _save(Image.fromarray(m), "WEBP", quality=50)),
        # TIFF
        "tiff-F-4096": ("tiff", lambda: _save(Image.fromarray(m.astype(np.float32)), "TIFF",
                                              compression="tiff_adobe_deflate")),
        "tiff-I16-4096": ("tiff", lambda: _save(Image.fromarray(m.astype(np.uint16) * 257), "TIFF",
                                                compression="tiff_adobe_deflate")),
        "tiff-RGB-4096": ("tiff", lambda: _save(Image.fromarray(m).convert("RGB"), "TIFF",
                                                compression="packbits")),
        "tiff-multipage-4096x5": ("tiff", lambda: _save(anim[0], "TIFF", save_all=True,
                                                        append_images=anim[1:5], compression="packbits")),
        "tiff-IFD-60000": ("tiff", tiff_big_ifd),
        # GIF, BMP, PNM
        "gif-4096x10": ("gif", lambda: _save(anim[0], "GIF", save_all=True, append_images=anim[1:])),
        "gif-15MB-comment": ("gif", gif_comments),
        "bmp-L-4000": ("bmp", lambda: _save(Image.fromarray(m4000), "BMP")),
        "bmp-RLE8-4096": ("bmp", lambda: bmp_rle8(4096, 4096)),
        "pgm-4000": ("pnm", lambda: _save(Image.fromarray(m4000), "PPM")),
        "pgm-16bit-2800": ("pnm", lambda: b"P5\n2800 2800\n65535\n" + bytes(2800 * 2800 * 2)),
        "pgm-plain-2800": ("pnm", lambda: plain_pgm(2800, 2800)),
        "pfm-2000": ("pnm", lambda: b"Pf\n2000 2000\n-1.0\n" + np.ones(2000 * 2000, "<f4").tobytes()),
        # refused outright
        "ico-256": ("other", lambda: _save(Image.fromarray(m[:256, :256]), "ICO")),
        "random-bytes": ("other", lambda: np.random.default_rng(1).bytes(1 << 16)),
        "png-header-only-4096": ("other", lambda: raw_png(4096, 4096, 8, 0, b"\0")[:33]),
    }


def cases(names=None) -> list[Case]:
    """The cases named (all by default), built now; each fits BODY_LIMIT."""
    makers = _makers()
    unknown = sorted(set(names or ()) - set(makers))
    if unknown:
        raise ValueError(f"unknown cases {unknown}; choose from {sorted(makers)}")
    out = []
    for name in names or makers:
        kind, make = makers[name]
        data = make()
        if len(data) > BODY_LIMIT:
            raise AssertionError(f"{name}: {len(data)} bytes is over the body limit")
        out.append(Case(name, kind, data))
    return out


def names() -> list[str]:
    return list(_makers())


# ------------------------------------------------------------------------------------------- probe

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def probe(fn, data: bytes) -> tuple[float, float, str]:
    """(CPU seconds, extra peak RSS in MB, outcome) of ``fn(data)`` run once in a forked child.

    The child resets its peak RSS (/proc/self/clear_refs) first, so the figure is what this one call
    added; outcome is "ok" or the exception's type and message.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            # Memory the parent freed but kept would be reused without counting: give it back first.
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            base = _status_kb("VmRSS:")
            t0 = resource.getrusage(resource.RUSAGE_SELF)
            try:
                fn(data)
                outcome = "ok"
            except Exception as e:  # noqa: BLE001 - reported, not raised
                outcome = f"{type(e).__name__}: {e}"
            t1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (t1.ru_utime - t0.ru_utime) + (t1.ru_stime - t0.ru_stime)
            peak = (_status_kb("VmHWM:") - base) / 1024
            os.write(w, f"{cpu}\t{peak}\t{' '.join(outcome.split())[:300]}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode()
    os.waitpid(pid, 0)
    if not msg:
        raise RuntimeError("the probe's child died without a report")
    cpu, peak, outcome = msg.split("\t", 2)
    return float(cpu), float(peak), outcome


def gif_comments(n: int = 60000) -> bytes:
    """A 64x64 GIF preceded by a comment of ``n`` 255-byte sub-blocks (Pillow reads and keeps them all)."""
    g = _save(Image.fromarray(picture("digit", 64, 64)), "GIF")
    head = 13 + (3 << ((g[10] & 7) + 1) if g[10] & 0x80 else 0)
    return g[:head] + b"\x21\xfe" + (b"\xff" + b"c" * 255) * n + b"\0" + g[head:]


def png_tiny_chunks(side: int = 1000) -> bytes:
    """A grey noise PNG whose compressed data is cut into 1-byte IDAT chunks (a Python step per chunk)."""
    data = _save(Image.fromarray(picture("noise", side, side)), "PNG", compress_level=1)
    pos, body = 8, b""
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        if data[pos + 4:pos + 8] == b"IDAT":
            body += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    chunks = b"".join(_chunk(b"IDAT", body[i:i + 1]) for i in range(len(body)))
    return data[:33] + chunks + _chunk(b"IEND", b"")
