"""Crafted uploads for benchmarks/bench_abuse.py and tests/test_abuse.py: small on the wire, costly to read.

Every case fits the service's body limit. Kinds cover each accepted format and its odd modes (PNG
1/8/16-bit grey, RGB, RGBA, palette, interlaced, animated, text chunks; JPEG baseline, progressive,
CMYK, grey noise, a 12 MP photo; WebP still and animated; TIFF float, 16-bit, multipage, huge IFD;
GIF multi-frame; BMP raw and RLE; PNM binary, 16-bit and plain text; refused formats such as ICO)
and pictures that defeat each stage (flat margins around a dark block, thin lines, noise,
checkerboards). The files are built by crafted_files.py; ``probe`` (cost_probe.py) runs one call in a
forked child and reports its CPU time and extra peak RSS.
"""
from __future__ import annotations

from dataclasses import dataclass

import crafted_files as cf
import numpy as np
from cost_probe import probe  # noqa: F401 - the suite's measure, imported from here by its users
from crafted_files import picture, raw_png, save
from PIL import Image

BODY_LIMIT = 16 << 20   # the service's default max_body_bytes


@dataclass(frozen=True)
class Case:
    """One upload: ``kind`` groups cases for the report (format and mode), ``data`` is the body."""
    name: str
    kind: str
    data: bytes


# ------------------------------------------------------------------------------------------- cases

def _png(a, mode=None, **kw) -> bytes:
    im = Image.fromarray(a)
    return save(im if mode is None else im.convert(mode), "PNG", compress_level=kw.pop("level", 9), **kw)


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
        "png-L-paeth-4096": ("png L", lambda: raw_png(4096, 4096, 8, 0, b"\x05\x83\x11", filter_type=4)),
        "png-L-average-4096": ("png L", lambda: raw_png(4096, 4096, 8, 0, b"\x05\x83\x11", filter_type=3)),
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
        "png-zTXt-64MB": ("png text", cf.ztxt_png),
        "png-1M-chunks": ("png chunks", cf.png_tiny_chunks),
        "apng-4096x10": ("png animated", lambda: save(anim[0], "PNG", save_all=True,
                                                        append_images=anim[1:])),
        # JPEG
        "jpeg-L-margin-4000": ("jpeg", lambda: save(Image.fromarray(m4000), "JPEG", quality=90)),
        "jpeg-RGB-4096": ("jpeg", lambda: save(Image.fromarray(m).convert("RGB"), "JPEG", quality=90)),
        "jpeg-L-noise-4096": ("jpeg", lambda: save(Image.fromarray(picture("noise", 4096, 4096)), "JPEG",
                                                     quality=85)),
        "jpeg-progressive-4096": ("jpeg progressive", lambda: save(Image.fromarray(m).convert("RGB"), "JPEG",
                                                                    quality=90, progressive=True)),
        "jpeg-progressive444-4096": ("jpeg progressive", lambda: save(
            Image.fromarray(m).convert("RGB"), "JPEG", progressive=True, subsampling=0)),
        "jpeg-many-scans": ("jpeg progressive", cf.jpeg_many_scans),
        "jpeg-CMYK-4096": ("jpeg CMYK", lambda: save(Image.fromarray(m).convert("CMYK"), "JPEG")),
        "jpeg-CMYK-progressive-4096": ("jpeg CMYK", lambda: save(Image.fromarray(m).convert("CMYK"), "JPEG",
                                                                  progressive=True)),
        "jpeg-photo-4032x3024": ("jpeg photo", _photo),
        # WebP
        "webp-anim-4096x10": ("webp", lambda: save(anim[0], "WEBP", save_all=True, append_images=anim[1:],
                                                    lossless=True)),
        "webp-lossless-4096": ("webp", lambda: save(Image.fromarray(m), "WEBP", lossless=True)),
        "webp-lossy-4096": ("webp", lambda: save(Image.fromarray(m), "WEBP", quality=50)),
        # TIFF
        "tiff-F-4096": ("tiff", lambda: save(Image.fromarray(m.astype(np.float32)), "TIFF",
                                              compression="tiff_adobe_deflate")),
        "tiff-I16-4096": ("tiff", lambda: save(Image.fromarray(m.astype(np.uint16) * 257), "TIFF",
                                                compression="tiff_adobe_deflate")),
        "tiff-RGB-4096": ("tiff", lambda: save(Image.fromarray(m).convert("RGB"), "TIFF",
                                                compression="packbits")),
        "tiff-multipage-4096x5": ("tiff", lambda: save(anim[0], "TIFF", save_all=True,
                                                        append_images=anim[1:5], compression="packbits")),
        "tiff-IFD-60000": ("tiff", cf.tiff_big_ifd),
        # GIF, BMP, PNM
        "gif-4096x10": ("gif", lambda: save(anim[0], "GIF", save_all=True, append_images=anim[1:])),
        "gif-15MB-comment": ("gif", cf.gif_comments),
        "bmp-L-4000": ("bmp", lambda: save(Image.fromarray(m4000), "BMP")),
        "bmp-RLE8-4096": ("bmp", lambda: cf.bmp_rle8(4096, 4096)),
        "pgm-4000": ("pnm", lambda: save(Image.fromarray(m4000), "PPM")),
        "pgm-16bit-2800": ("pnm", lambda: b"P5\n2800 2800\n65535\n" + bytes(2800 * 2800 * 2)),
        "pgm-plain-2800": ("pnm", lambda: cf.plain_pgm(2800, 2800)),
        "pfm-2000": ("pnm", lambda: b"Pf\n2000 2000\n-1.0\n" + np.ones(2000 * 2000, "<f4").tobytes()),
        # refused outright
        "ico-256": ("other", lambda: save(Image.fromarray(m[:256, :256]), "ICO")),
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
