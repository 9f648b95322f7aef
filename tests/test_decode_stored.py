"""8-bit grey BMP and PGM: reduced straight from the file's bytes (gray_blocks.stored_gray), never decoded
whole, with the same pixels as decoding in full and box-reducing."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from mnistlite.images import decode
from mnistlite.images.decode import ImageError, decode_image


def _picture(w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(w * h)
    a = rng.integers(0, 256, (h, w), dtype=np.uint8)
    a[h // 3:h // 2, w // 4:w // 2] = 0      # something that is not symmetric, so a flip shows
    return a


def _save(a: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def _top_down_bmp(a: np.ndarray) -> bytes:
    """The same picture as a top-down BMP (negative height), which Pillow cannot write."""
    data = bytearray(_save(a, "BMP"))
    h = a.shape[0]
    stride = (a.shape[1] + 3) & ~3
    offset = struct.unpack_from("<I", data, 10)[0]
    rows = np.frombuffer(bytes(data[offset:offset + stride * h]), np.uint8).reshape(h, stride)[::-1]
    struct.pack_into("<i", data, 22, -h)
    data[offset:offset + stride * h] = rows.tobytes()
    return bytes(data)


def _full_then_reduced(data: bytes, reduce: int) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    im.load()
    full = np.asarray(im.convert("L"))
    h, w = full.shape
    f = decode._factor(w, h, reduce)
    return full if f == 1 else np.asarray(Image.fromarray(full).reduce(f, (0, 0, w // f * f, h // f * f)))


@pytest.fixture
def never_decoded_whole(monkeypatch):
    def refuse(im):
        raise AssertionError(f"{im.format} {im.size} was decoded whole")

    monkeypatch.setattr(decode, "_load", refuse)


@pytest.mark.parametrize("w,h", [(1001, 777), (3000, 2001), (500, 400)])   # odd widths: padded BMP rows
@pytest.mark.parametrize("fmt", ["BMP", "PPM", "BMP top-down"])
def test_grey_bmp_and_pgm_are_reduced_from_the_file_bytes(never_decoded_whole, fmt, w, h):
    a = _picture(w, h)
    data = _top_down_bmp(a) if fmt == "BMP top-down" else _save(a, fmt)
    got = decode_image(data, reduce=384)
    np.testing.assert_array_equal(got, _full_then_reduced(data, 384))
    assert got.flags.writeable and got.flags.c_contiguous


def test_a_truncated_grey_bmp_is_left_to_pillow_which_says_so():
    data = _save(_picture(1001, 777), "BMP")
    with pytest.raises(ImageError, match="truncated"):
        decode_image(data[:-5000], reduce=384)


def test_other_modes_still_decode_the_usual_way():
    a = _picture(900, 700)
    rgb = _save(np.dstack([a, a, 255 - a]), "BMP")
    want = _full_then_reduced(rgb, 384)
    np.testing.assert_array_equal(decode_image(rgb, reduce=384), want)
