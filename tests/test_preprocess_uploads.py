"""User images to MNIST form, the MNIST recipe end to end: formats, modes, transparency, orientation."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from preprocess_kit import save, shift_corr

from mnistlite.data.images import encode_png
from mnistlite.images.decode import ImageError, decode_image
from mnistlite.images.preprocess import image_to_input, preprocess_image, to_mnist


def _render(digit: np.ndarray, rng: np.random.Generator, fmt: str, size: int = 200) -> bytes:
    """A MNIST digit as a user would send it: black on white, scaled up 3-5x, anywhere on the canvas."""
    s = int(rng.integers(90, 150))
    big = Image.fromarray(255 - digit).resize((s, s), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (size, size), 255)
    canvas.paste(big, (int(rng.integers(0, size - s)), int(rng.integers(0, size - s))))
    return save(canvas, fmt, **({"quality": 75} if fmt == "JPEG" else {}))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_inverted_offcentre_200px_digit_comes_out_like_its_mnist_form(fmt, mnist_uint8, small_model):
    (_, _), (x, _) = mnist_uint8
    rng = np.random.default_rng(7)
    digits = x[:200]
    out = np.stack([preprocess_image(_render(d, rng, fmt)) for d in digits])
    corr = np.array([shift_corr(o, d) for o, d in zip(out, digits, strict=True)])
    # Measured (seed 7): PNG median 0.97, min 0.84; JPEG q75 median 0.96, min 0.83.
    assert np.median(corr) > 0.94 and corr.min() > 0.7
    agree = (small_model.predict(out) == small_model.predict(digits)).mean()
    assert agree >= 0.95


def test_colour_jpeg_and_lossless_formats(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    d = x[1]
    rgb = Image.fromarray(np.stack([255 - d] * 3, axis=-1))
    for fmt in ["PNG", "BMP", "GIF", "TIFF", "PPM"]:
        np.testing.assert_array_equal(decode_image(save(rgb, fmt)), 255 - d, err_msg=fmt)
    np.testing.assert_array_equal(decode_image(save(rgb, "WEBP", lossless=True)), 255 - d)
    assert shift_corr(preprocess_image(save(rgb, "JPEG", quality=90)), d) > 0.95


def test_decode_image_keywords_formats_size_reduce_copy(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    d = x[2]
    png, jpeg = save(Image.fromarray(d)), save(Image.fromarray(d).resize((800, 600)), "JPEG")
    with pytest.raises(ImageError, match="accepted: PNG"):
        decode_image(jpeg, formats=("PNG",))
    with pytest.raises(ValueError, match="formats must be among"):
        decode_image(png, formats=("PNG", "EPS"))
    np.testing.assert_array_equal(decode_image(png, size=(28, 28)), d)
    with pytest.raises(ImageError, match="^size 800x600, expected 28x28$"):
        decode_image(jpeg, size=(28, 28))
    assert decode_image(jpeg).shape == (600, 800)
    assert decode_image(jpeg, reduce=150).shape == (150, 200)      # 1/4 scale keeps >= 150 a side
    assert decode_image(jpeg, reduce=700).shape == (600, 800)      # no scale keeps 700
    for data in (png, jpeg):
        assert decode_image(data).flags.writeable
        np.testing.assert_array_equal(decode_image(data, copy=False), decode_image(data))


def test_rgba_transparent_background_with_black_strokes(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    d = x[2]
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = d                                # black ink whose opacity is the digit
    gray = decode_image(save(Image.fromarray(rgba)))
    assert gray[0, 0] == 255                        # transparent -> white paper
    assert np.abs(to_mnist(gray).astype(int) - d).max() <= 1


def test_rgba_white_strokes_on_transparent_are_not_lost(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    d = x[3]
    rgba = np.full((28, 28, 4), 255, np.uint8)
    rgba[..., 3] = d
    assert np.abs(preprocess_image(save(Image.fromarray(rgba))).astype(int) - d).max() <= 1
    rgba[..., 3] = 0
    assert not preprocess_image(save(Image.fromarray(rgba))).any()


def test_palette_images_with_and_without_transparency(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    d = x[4]
    pal = Image.fromarray(d).convert("P")           # grey palette: exact
    np.testing.assert_array_equal(decode_image(save(pal)), d)
    ink = np.where(d > 127, 1, 0).astype(np.uint8)  # index 0 transparent, index 1 black
    p = Image.fromarray(ink, mode=None).convert("P")
    p.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    gray = decode_image(save(p, transparency=0))
    np.testing.assert_array_equal(gray, np.where(ink == 1, 0, 255))


def test_16bit_grayscale_is_scaled_not_clipped(mnist_uint8):
    (_, _), (x, _) = mnist_uint8
    d = x[5]
    im16 = Image.fromarray(d.astype(np.uint16) * 257)
    assert Image.open(io.BytesIO(save(im16))).mode.startswith("I")
    np.testing.assert_array_equal(decode_image(save(im16)), d)


def test_exif_orientation_is_applied():
    g = np.zeros((40, 80), np.uint8)
    g[:, :20] = 255                                 # bright left quarter
    exif = Image.Exif()
    exif[0x0112] = 6                                # "rotate 90 CW to display"
    out = decode_image(save(Image.fromarray(g), "JPEG", quality=95, exif=exif))
    assert out.shape == (80, 40)
    assert out[:20].mean() > 200 and out[30:].mean() < 30  # left edge became the top


def test_image_to_input_is_model_ready(mnist_uint8, small_model):
    (_, _), (x, y) = mnist_uint8
    inp = image_to_input(encode_png(x[0]))
    assert inp.dtype == np.float32 and inp.shape == (1, 784) and 0 <= inp.min() and inp.max() <= 1
    assert small_model.predict(inp)[0] == small_model.predict(x[:1])[0]
