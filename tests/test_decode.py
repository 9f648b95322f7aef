"""Decoding: plain PNGs through libspng give exactly Pillow's pixels; every other PNG is left to Pillow.

The libspng path exists for speed only, so its contract is equality with the Pillow path (which the
preprocessing tests pin), and that nothing Pillow refuses gets decoded by it: pyspng ignores chunk
CRCs, so a damaged PNG must still be an ImageError.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from mnistlite.images import decode
from mnistlite.images.decode import ImageError, _decode_pillow, _plain_png, decode_image

pytestmark = pytest.mark.skipif(decode._spng() is None, reason="pyspng is not installed")

CHANNELS = {"L": (), "LA": (2,), "RGB": (3,), "RGBA": (4,)}


def _png(a: np.ndarray, mode: str, **kw) -> bytes:
    """uint8 (h, w[, c]) -> PNG bytes; Pillow picks the mode from the shape, checked against ``mode``."""
    im = Image.fromarray(a)
    assert im.mode == mode, (im.mode, mode)
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, kind, length) of every chunk of a well-formed PNG."""
    out, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        out.append((pos, kind, length))
        pos += 12 + length
    return out


def _with_chunk(data: bytes, kind: bytes, body: bytes) -> bytes:
    """``data`` with one more chunk right after IHDR (CRC correct)."""
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return data[:33] + chunk + data[33:]


@st.composite
def plain_pngs(draw):
    mode = draw(st.sampled_from(sorted(CHANNELS)))
    shape = (draw(st.integers(1, 40)), draw(st.integers(1, 40))) + CHANNELS[mode]
    a = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 255)))
    return mode, _png(a, mode, compress_level=draw(st.integers(0, 9)))


@settings(max_examples=150, deadline=None)
@given(plain_pngs())
def test_plain_pngs_take_the_libspng_path_and_match_pillow_exactly(case):
    mode, data = case
    fast = _plain_png(data, 4096, 4096 * 4096)
    assert fast is not None, mode
    np.testing.assert_array_equal(fast, _decode_pillow(data, 4096))
    np.testing.assert_array_equal(decode_image(data), _decode_pillow(data, 4096))


def test_mnist_digits_decode_identically(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    for d in x[:200]:
        data = _png(255 - d, "L")
        np.testing.assert_array_equal(_plain_png(data, 4096, 4096 * 4096), d ^ 255)


def _others(rng) -> dict:
    grey = rng.integers(0, 256, (20, 20), dtype=np.uint8)
    base = _png(grey, "L")
    idat = next(c for c in _chunks(base) if c[1] == b"IDAT")
    flipped = bytearray(base)
    flipped[idat[0] + 8 + idat[2] // 2] ^= 0x55  # inside the IDAT data: only its CRC notices
    pal = io.BytesIO()
    Image.fromarray(grey).convert("P").save(pal, format="PNG")
    wide = io.BytesIO()
    Image.fromarray(grey.astype(np.uint16) * 257).save(wide, format="PNG")
    return {
        "palette": pal.getvalue(),
        "16-bit": wide.getvalue(),
        "transparency (tRNS)": _png(grey, "L", transparency=0),
        "animation (acTL)": _with_chunk(base, b"acTL", struct.pack(">II", 1, 0)),
        "bad IDAT CRC": bytes(flipped),
        "truncated": base[: len(base) - 20],
        "data after IEND": base + b"junk",
        "too wide for the limit": _png(np.zeros((1, 50), np.uint8), "L"),
    }


@pytest.mark.parametrize("name", ["palette", "16-bit", "transparency (tRNS)", "animation (acTL)",
                                  "bad IDAT CRC", "truncated", "data after IEND", "too wide for the limit"])
def test_other_pngs_are_left_to_pillow_with_the_same_outcome(name):
    data = _others(np.random.default_rng(0))[name]
    assert _plain_png(data, 40, 4096 * 4096) is None
    try:
        expected = _decode_pillow(data, 40)
    except ImageError as e:
        with pytest.raises(type(e), match="truncated|corrupt|too large|limit"):
            decode_image(data, max_side=40)
    else:
        np.testing.assert_array_equal(decode_image(data, max_side=40), expected)


def test_a_png_with_a_damaged_pixel_stream_is_refused_not_decoded():
    data = _others(np.random.default_rng(1))["bad IDAT CRC"]
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode_image(data)


def test_without_pyspng_pillow_decodes_everything(monkeypatch):
    data = _png(np.random.default_rng(2).integers(0, 256, (28, 28, 3), dtype=np.uint8), "RGB")
    fast = decode_image(data)
    monkeypatch.setattr(decode, "_spng", lambda: None)
    assert _plain_png(data, 4096, 4096 * 4096) is None
    np.testing.assert_array_equal(decode_image(data), fast)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(2)),
                  elements=st.integers(0, 255)))
def test_compositing_is_the_rounded_blend_over_white_or_black(la):
    lum, alpha = la[..., 0].astype(np.int64), la[..., 1].astype(np.int64)
    over_white = (lum * alpha + 255 * (255 - alpha) + 127) // 255
    if alpha.any() and over_white.min() > 255 - decode.MIN_CONTRAST:
        expected = (lum * alpha + 127) // 255      # light strokes on a transparent canvas: over black
    else:
        expected = over_white
    np.testing.assert_array_equal(decode._composite(la[..., 0], la[..., 1]), expected)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "RGB"])
def test_big_uploads_decode_without_big_temporaries(mode):
    # A 1024x1024 transparent PNG is a few KB on the wire; its decode must not need 20-40 bytes a pixel
    # (uint32 temporaries over the whole image, as it once did), which at 4096x4096 is 300-650 MB in one
    # worker. Now 5-9 bytes a pixel of numpy temporaries (Pillow's own buffers are not traced).
    import tracemalloc

    a = np.full((1024, 1024, 4), 255, np.uint8)
    a[..., 3] = 0
    a[300:700, 500:530] = (0, 0, 0, 255)
    a = {"RGBA": a, "LA": a[..., [0, 3]], "RGB": a[..., :3]}[mode]
    data = _png(np.ascontiguousarray(a), mode)
    decode_image(data)
    tracemalloc.start()
    try:
        decode_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 12 * 1024 * 1024, f"{peak / 1024 ** 2:.1f} bytes per pixel"


def test_bytes_like_uploads_decode_the_same():
    data = _png(np.random.default_rng(3).integers(0, 256, (28, 28), dtype=np.uint8), "L")
    for blob in (bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(decode_image(blob), decode_image(data))
