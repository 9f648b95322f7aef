"""Crafted uploads: each is refused from its header (ImageTooLarge, one line) or decoded within the memory
budget, measured as the peak RSS a forked child adds (benchmarks/cost_probe.py), never by time.

The cases are the classes benchmarks/bench_abuse.py measures: 16-bit and float pixels, alpha and palette
conversions, animated WebP, big TIFF directories, PNG text bombs, progressive and many-scan JPEGs, plain
PNM, RLE BMP, and big flat-margin pictures that must be decoded reduced.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mnistlite.images.decode import ImageError, ImageTooLarge, decode_image
from mnistlite.images.preprocess import preprocess_image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))  # benchmarks/ is no package
import abuse_cases  # noqa: E402
import crafted_files  # noqa: E402

MEMORY_MB = 40   # extra peak memory one request may take (issue's bound)
# One case per class of input; 4096x4096 unless named otherwise.
CRAFTED = ["png-1M-chunks", "png-I16-4096", "png-RGBA16-interlaced-4096", "png-P-trns-4096", "png-LA-4096",
           "png-zTXt-64MB", "webp-anim-4096x10", "tiff-F-4096", "tiff-I16-4096", "tiff-IFD-60000",
           "jpeg-progressive-4096", "jpeg-CMYK-progressive-4096", "jpeg-many-scans", "gif-4096x10",
           "gif-15MB-comment", "bmp-RLE8-4096", "pgm-16bit-2800", "pgm-plain-2800", "pfm-2000",
           "png-L-margin-4000", "png-L-lines-4096", "png-L-paeth-4096", "jpeg-L-margin-4000", "bmp-L-4000"]


@pytest.fixture(scope="module")
def crafted():
    return {c.name: c for c in abuse_cases.cases(CRAFTED)}


def _warm():
    """Import Pillow's plugins and numpy paths in the parent, so the child measures the decode only."""
    from PIL import Image

    from mnistlite.images.decode import _pillow

    _pillow()
    buf = io.BytesIO()
    Image.fromarray(crafted_files.picture("digit", 64, 64)).save(buf, format="PNG")
    preprocess_image(buf.getvalue())


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_upload_is_refused_or_read_within_memory_budget(crafted, name):
    _warm()
    _, peak, outcome = abuse_cases.probe(preprocess_image, crafted[name].data)
    assert outcome == "ok" or outcome.startswith(("ImageTooLarge: ", "ImageError: ")), outcome
    assert peak <= MEMORY_MB, f"{name}: +{peak:.0f} MB ({outcome})"


@pytest.mark.parametrize("name", ["png-1M-chunks", "png-I16-4096", "webp-anim-4096x10", "tiff-F-4096",
                                  "tiff-IFD-60000", "png-zTXt-64MB", "jpeg-many-scans", "pgm-plain-2800",
                                  "bmp-RLE8-4096", "png-L-paeth-4096", "png-L-margin-4000", "pfm-2000"])
def test_bombs_are_refused_from_the_header_with_one_readable_line(crafted, name):
    with pytest.raises(ImageTooLarge) as err:
        decode_image(crafted[name].data)
    message = str(err.value)
    assert "\n" not in message and ("send" in message or "save" in message), message  # says what to do


def test_big_images_decode_reduced_whatever_the_format(crafted):
    png = crafted_files.save(Image.fromarray(crafted_files.picture("lines", 2000, 1900)), "PNG")
    for name, data in [("png-L-lines-2000", png)] + [(n, crafted[n].data) for n in ("jpeg-L-margin-4000",
                                                                                      "bmp-L-4000")]:
        g = decode_image(data, reduce=384)
        assert g.dtype == np.uint8 and 384 <= max(g.shape) < 2 * 384 * 2, (name, g.shape)


def test_reduced_decode_is_the_box_mean_of_the_full_one():
    # Same pixels as decoding in full and then box-filtering, for modes converted in blocks as well.
    from PIL import Image

    a = crafted_files.picture("lines", 1000, 700)
    rgba = np.dstack([a, 255 - a, a // 2, np.where(a > 0, 255, 90).astype(np.uint8)])
    for im in (Image.fromarray(a), Image.fromarray(a.astype(np.uint16) * 257), Image.fromarray(rgba),
               Image.fromarray(a).convert("P")):
        data = crafted_files.save(im, "PNG")
        full = decode_image(data)
        want = np.asarray(Image.fromarray(full).reduce(2, (0, 0, 1000, 700)))
        np.testing.assert_array_equal(decode_image(data, reduce=400), want, err_msg=im.mode)


def test_random_bytes_after_a_magic_number_are_image_errors():
    rng = np.random.default_rng(0)
    for magic in (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\0\0\0\0WEBPVP8X", b"II*\0", b"MM\0+",
                  b"GIF89a", b"BM", b"P5\n", b"P2\n"):
        for n in (0, 10, 100, 5000):
            data = magic + rng.bytes(n)
            try:
                decode_image(data)
            except ImageError:
                continue
            except Exception as e:  # noqa: BLE001 - the assertion names it
                pytest.fail(f"{magic!r}+{n} random bytes raised {type(e).__name__}: {e}")


_MAGICS = (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"RIFF\0\0\0\0WEBPVP8X", b"RIFF\0\0\0\0WEBPVP8L",
           b"II*\0\x08\0\0\0", b"MM\0*", b"II+\0", b"GIF89a", b"BM", b"P5\n", b"P2\n", b"Pf\n")


def _small_files() -> list[bytes]:
    from PIL import Image

    a = crafted_files.picture("digit", 40, 30)
    out = []
    for mode, fmt in (("L", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("RGB", "JPEG"), ("L", "WEBP"),
                      ("L", "TIFF"), ("L", "GIF"), ("L", "BMP"), ("L", "PPM")):
        out.append(crafted_files.save(Image.fromarray(a).convert(mode), fmt))
    return out


_SMALL = _small_files()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_MAGICS), st.binary(max_size=2000))
def test_random_bytes_give_only_image_errors(magic, tail):
    try:
        g = decode_image(magic + tail)
    except ImageError:
        return
    assert g.dtype == np.uint8 and g.ndim == 2 and g.size


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(_SMALL))),
       st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=8))
def test_damaged_files_give_only_image_errors(which, flips):
    data = bytearray(_SMALL[which])
    for pos, value in flips:
        data[pos % len(data)] = value
    try:
        g = decode_image(bytes(data), reduce=16)
    except ImageError:
        return
    assert g.dtype == np.uint8 and g.ndim == 2 and g.size


def test_exif_orientation_is_read_like_pillow():
    from PIL import Image

    from mnistlite.images import decode_cost

    a = crafted_files.picture("digit", 40, 30)
    for value in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = value
        exif[0x010F] = "maker"
        data = crafted_files.save(Image.fromarray(a), "JPEG", exif=exif.tobytes())
        with Image.open(io.BytesIO(data)) as im:
            assert decode_cost.orientation(im.info["exif"]) == im.getexif().get(0x0112) == value
    assert decode_cost.orientation(b"Exif\0\0II*\0\xff\xff\0\0") == 1 and decode_cost.orientation(b"") == 1


def test_webp_canvas_size_is_read_like_pillow():
    from PIL import Image

    from mnistlite.images import decode_cost

    a = crafted_files.picture("digit", 41, 29)
    frames = [Image.fromarray(a), Image.fromarray(255 - a)]
    for kw in ({"lossless": True}, {"quality": 50}, {"save_all": True, "append_images": frames[1:]}):
        data = crafted_files.save(frames[0], "WEBP", **kw)
        assert decode_cost._webp_size(data) == (41, 29), kw


def test_the_scans_of_a_progressive_jpeg_are_counted_only_as_far_as_the_budget_needs():
    from mnistlite.images import decode_cost

    assert decode_cost._count(b"x\xff\xda" * 1000, b"\xff\xda", 5) == 5
    assert decode_cost._count(b"x\xff\xda" * 3, b"\xff\xda", 5) == 3
    data = crafted_files.jpeg_many_scans(50)   # refused however far its scans are counted
    with pytest.raises(ImageTooLarge, match="too long to decode"):
        decode_image(data)
