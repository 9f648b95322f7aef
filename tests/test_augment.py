"""Training-time augmentation: shapes, ranges, seeds, labels untouched, and what each distortion does."""
import numpy as np
import pytest

import mnistlite as ml
from mnistlite.images.augment import Augment, affine, clutter_bank, has_margin


@pytest.fixture(scope="module")
def digits(mnist):
    (x, y), _ = mnist
    return x[:512], y[:512]


def test_shapes_dtype_and_range(digits):
    x, _ = digits
    rng = np.random.default_rng(0)
    out = Augment(p=1.0)(x, rng, clutter_bank(64, rng))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert x.flags.writeable and not np.shares_memory(out, x)


def test_same_seed_same_batch_other_seed_other_batch(digits):
    x, _ = digits
    a = Augment()(x, np.random.default_rng(5), clutter_bank(32, np.random.default_rng(1)))
    b = Augment()(x, np.random.default_rng(5), clutter_bank(32, np.random.default_rng(1)))
    c = Augment()(x, np.random.default_rng(6), clutter_bank(32, np.random.default_rng(1)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_share_p_of_images_change_and_the_input_is_untouched(digits):
    x, _ = digits
    before = x.copy()
    out = Augment(p=0.3)(x, np.random.default_rng(2))
    changed = (np.abs(out - x).max(axis=1) > 1e-3).mean()
    assert 0.2 < changed < 0.4
    assert np.array_equal(x, before)
    assert np.array_equal(Augment(p=0.0)(x, np.random.default_rng(2)), x)


def test_distortions_keep_the_digit_recognisable(digits, small_model):
    # No label changes: a model trained without augmentation still reads most distorted digits,
    # and the distortion keeps each image's ink near its own (not swapped between samples).
    x, y = digits
    out = Augment(p=1.0, clutter=0.0)(x, np.random.default_rng(3))
    assert (small_model.predict(out) == y).mean() > 0.75
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(out[:100], x[:100], strict=True)]
    assert np.median(corr) > 0.5


def test_affine_identity_and_rotation():
    rng = np.random.default_rng(0)
    x = rng.random((4, 784)).astype(np.float32)
    eye = np.tile(np.eye(2), (4, 1, 1))
    np.testing.assert_allclose(affine(x, eye, np.zeros((4, 2))), x, atol=1e-6)
    # a quarter turn moves the pixel at (row 3, col 14) to (row 14, col 24) or (14, 3)
    img = np.zeros((1, 28, 28), np.float32)
    img[0, 3, 14] = 1
    turn = np.array([[[0.0, -1.0], [1.0, 0.0]]])
    out = affine(img.reshape(1, 784), turn, np.zeros((1, 2))).reshape(28, 28)
    r, c = np.unravel_index(out.argmax(), out.shape)
    assert out.max() > 0.99 and (r, c) in ((14, 24), (14, 3))


def test_clutter_bank_is_seeded_and_in_range():
    a = clutter_bank(16, np.random.default_rng(4))
    assert a.shape == (16, 784) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, clutter_bank(16, np.random.default_rng(4)))
    assert (a.sum(axis=1) > 1).all()     # every pattern draws something


def test_fit_with_augment_keeps_labels_and_learns(mnist):
    (x, y), (xt, yt) = mnist
    cfg = ml.TrainConfig(hidden=(64,), epochs=2, batch_size=128, augment=0.5, outliers=0.0, seed=1)
    model, history = ml.train(cfg, x[:8000], y[:8000])
    assert (model.predict(xt[:2000]) == yt[:2000]).mean() > 0.8
    assert model.config.augment == 0.5
    with pytest.raises(ValueError, match="augment must be in"):
        ml.TrainConfig(augment=1.5)


def test_images_that_fill_their_frame_pass_through(digits):
    """Only images with a blank margin are distorted: ink on the outermost pixel ring (a garment, a
    cropped photo) would be cut by a warp, so such an image comes out unchanged even with p=1."""
    x, _ = digits
    framed = x[:64].copy()
    img = framed.reshape(-1, 28, 28)
    img[:32, :, 0] = 0.5                     # a grey column along the left edge: 14 pixels' worth
    img[32:48, 27, 10] = 0.49                # just under the default frame_ink of 0.5: still a margin
    img[48:, 27, 10:12] = 0.25               # exactly 0.5 pixels' worth: fills the frame
    assert has_margin(framed).tolist() == [False] * 32 + [True] * 16 + [False] * 16
    out = Augment(p=1.0)(framed, np.random.default_rng(4), clutter_bank(16, np.random.default_rng(0)))
    fills = ~has_margin(framed)
    assert np.array_equal(out[fills], framed[fills])
    assert (np.abs(out[~fills] - framed[~fills]).max(axis=1) > 1e-3).all()
    # MNIST's digits nearly all have a margin: the distortions reach them as before
    assert has_margin(x).mean() > 0.97
