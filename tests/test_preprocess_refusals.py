"""User images preprocessing refuses: bad, truncated, huge or corrupt bytes raise ImageError, nothing else."""
from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from preprocess_kit import save

from mnistlite.images.decode import MAX_PIXELS, ImageError, ImageTooLarge, decode_image
from mnistlite.images.preprocess import preprocess_image


def _png_header(width: int, height: int) -> bytes:
    """A PNG with only a signature, an IHDR declaring width x height (8-bit gray) and IEND: no pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, match", [
    (b"", "empty file"),
    (b"hello, this is not a picture at all", "not an image"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n", "not an image"),     # EPS would run Ghostscript: refused
])
def test_bad_bytes_raise_image_error(data, match):
    with pytest.raises(ImageError, match=match):
        preprocess_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_images_raise_image_error(fmt, mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    data = save(Image.fromarray(np.tile(x[0], (4, 4))), fmt)
    with pytest.raises(ImageError, match="truncated or corrupt") as err:
        preprocess_image(data[: len(data) // 2])
    assert "\n" not in str(err.value) and not isinstance(err.value, ImageTooLarge)


@pytest.mark.parametrize("size", [(5000, 5000), (4097, 1), (1, 4097), (70000, 70000)])
def test_huge_declared_size_is_refused_from_the_header(size):
    # The file holds no pixel data: decoding would give "truncated", so ImageTooLarge proves it was not tried.
    with pytest.raises(ImageTooLarge, match="too large|limit"):
        preprocess_image(_png_header(*size))


def test_too_large_respects_max_side_and_bomb_warnings_as_errors():
    data = save(Image.new("L", (100, 60), 255))
    assert preprocess_image(data, max_side=100).shape == (28, 28)
    with pytest.raises(ImageTooLarge):
        preprocess_image(data, max_side=99)
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=100 * 60 - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # Pillow's bomb warning (> 89 Mpx) raised as error
        with pytest.raises(ImageTooLarge):
            preprocess_image(_png_header(10000, 10000))
    assert MAX_PIXELS == 4096 * 4096


def test_real_large_blank_png_is_refused():
    data = save(Image.new("L", (5000, 5000), 255))   # ~25 kB on disk, 25 Mpx decoded
    assert len(data) < 100_000
    with pytest.raises(ImageTooLarge, match="5000x5000"):
        preprocess_image(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.binary(max_size=300).map(lambda b: b"\x89PNG\r\n\x1a\n" + b)
       | st.binary(max_size=300).map(lambda b: b"\xff\xd8\xff" + b)
       | st.binary(max_size=200).map(lambda b: b"GIF89a" + b))
def test_random_bytes_raise_nothing_but_image_error(data):
    try:
        out = preprocess_image(data)
    except ImageError as e:
        assert "\n" not in str(e)
    else:
        assert out.shape == (28, 28) and out.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_corrupted_real_png_raises_nothing_but_image_error(data):
    ramp = np.arange(28 * 28, dtype=np.uint32).reshape(28, 28).astype(np.uint8)
    png = bytearray(save(Image.fromarray(ramp)))
    for _ in range(data.draw(st.integers(1, 4))):
        png[data.draw(st.integers(0, len(png) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(png)))
    try:
        preprocess_image(bytes(png[:cut]))
    except ImageError:
        pass
