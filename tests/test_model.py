"""The MLP end to end on real MNIST: shapes and dtypes, determinism, early stopping, callbacks, accuracy."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mnistlite as ml
from mnistlite.images.augment import random_shift
from mnistlite.nn.arrays import to_float
from mnistlite.nn.calibration import Calibration


@pytest.fixture(scope="module")
def subset(mnist):
    (x, y), (xt, yt) = mnist
    return (x[:6000], y[:6000]), (xt[:2000], yt[:2000])


def test_predict_shapes_dtypes_and_inputs(small_model, mnist, mnist_uint8):
    _, (xt, yt) = mnist
    _, (ut, _) = mnist_uint8
    proba = small_model.predict_proba(xt[:500])
    assert proba.shape == (500, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    pred = small_model.predict(xt[:500])
    assert pred.shape == (500,) and pred.dtype == np.int64
    np.testing.assert_array_equal(pred, proba.argmax(axis=1))
    # uint8 (n, 28, 28) is the same input as float32 (n, 784) / 255; one sample works unbatched too
    np.testing.assert_array_equal(small_model.predict(ut[:500]), pred)
    assert small_model.predict(xt[0]).tolist() == [pred[0]]
    assert (small_model.predict(xt) == yt).mean() > 0.93
    # predict_proba's result is the caller's: a second call must not overwrite it
    first = small_model.predict_proba(xt[:3]).copy()
    small_model.predict_proba(xt[3:6])
    np.testing.assert_array_equal(small_model.predict_proba(xt[:3]), first)


def test_bad_inputs_are_rejected_with_the_shape(small_model):
    with pytest.raises(ValueError, match=r"got shape \(3, 100\)"):
        small_model.predict(np.zeros((3, 100), np.float32))
    with pytest.raises(ValueError, match="labels must be in"):
        ml.MLP([784, 10]).fit(np.zeros((2, 784), np.float32), np.array([0, 10]))


@pytest.mark.slow
def test_same_seed_same_weights_bit_for_bit(subset):
    (x, y), _ = subset
    config = ml.TrainConfig(hidden=(32,), epochs=2, batch_size=64, dropout=0.1, shift=1, seed=7)
    a, _ = ml.train(config, x, y)
    b, _ = ml.train(config, x, y)
    c, _ = ml.train(config.replace(seed=8), x, y)
    assert a.flat_params.tobytes() == b.flat_params.tobytes()
    assert a.flat_params.tobytes() != c.flat_params.tobytes()


def test_softmax_regression_learns(subset):
    (x, y), (xt, yt) = subset
    model = ml.MLP([784, 10], seed=0)
    assert len(model.dense) == 1
    model.fit(x, y, epochs=3, batch_size=64, optimizer=ml.SGD(0.5))
    assert (model.predict(xt) == yt).mean() > 0.85


def test_fit_prints_nothing_and_returns_the_history(subset, capsys):
    (x, y), (xt, yt) = subset
    model = ml.MLP([784, 16, 10], seed=0)
    history = model.fit(x, y, epochs=2, batch_size=128, validation_data=(xt, yt))
    assert capsys.readouterr() == ("", "")  # progress is the caller's business (callbacks)
    assert list(history) == ["epoch", "loss", "acc", "val_loss", "val_acc", "lr", "seconds"]
    assert history["epoch"] == [1, 2] and len(history["val_acc"]) == 2
    assert history["loss"][1] < history["loss"][0]
    assert history["val_loss"][1] < history["val_loss"][0] and history["val_acc"][1] > 0.7


def test_early_stopping_restores_the_best_weights(subset):
    (x, y), (xt, yt) = subset
    # a too-large learning rate on a tiny training set overfits fast, so val loss turns up early
    model = ml.MLP([784, 64, 10], seed=0)
    history = model.fit(x[:500], y[:500], epochs=30, batch_size=16, optimizer=ml.Adam(3e-3),
                        validation_data=(xt, yt), patience=2)
    ran = len(history["epoch"])
    assert ran < 30, "early stopping never triggered"
    best = int(np.argmin(history["val_loss"]))
    assert ran == best + 1 + 2
    loss, _ = model.evaluate(xt, yt)
    assert loss == pytest.approx(history["val_loss"][best], rel=1e-6)
    # patience=2 is EarlyStopping(2) as a callback: passing the callback gives the same weights
    same = ml.MLP([784, 64, 10], seed=0)
    same.fit(x[:500], y[:500], epochs=30, batch_size=16, optimizer=ml.Adam(3e-3),
             validation_data=(xt, yt), callbacks=[ml.EarlyStopping(2)])
    np.testing.assert_array_equal(same.flat_params, model.flat_params)


def test_callbacks_see_each_epoch_and_can_stop(subset):
    (x, y), _ = subset
    seen = []

    def stop_after_two(record, model):
        seen.append(record["epoch"])
        return record["epoch"] == 2

    class Watcher:
        def __init__(self):
            self.epochs, self.ended = [], 0

        def __call__(self, record, model):
            self.epochs.append(record["epoch"])

        def on_train_end(self, model):
            self.ended += 1

    watcher = Watcher()  # after the callback that stops: it still sees epoch 2, and the end
    history = ml.MLP([784, 8, 10]).fit(x, y, epochs=5, batch_size=256, callbacks=[stop_after_two, watcher])
    assert seen == [1, 2] and history["epoch"] == [1, 2]
    assert watcher.epochs == [1, 2] and watcher.ended == 1


def test_random_shift_moves_each_image_within_range():
    rng = np.random.default_rng(0)
    x = rng.random((50, 784), dtype=np.float32)
    x.reshape(50, 28, 28)[:, :2, :] = 0  # give room so a shift loses nothing on these sides
    x.reshape(50, 28, 28)[:, -2:, :] = 0
    x.reshape(50, 28, 28)[:, :, :2] = 0
    x.reshape(50, 28, 28)[:, :, -2:] = 0
    out = random_shift(x, 2, np.random.default_rng(1)).reshape(50, 28, 28)
    images = x.reshape(50, 28, 28)
    shifts = set()
    for img, moved in zip(images, out, strict=True):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(np.roll(img, (dy, dx), axis=(0, 1)), moved)]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 10  # per-image shifts, not one for the batch


@pytest.mark.slow
def test_reference_configuration_reaches_97_percent_on_real_mnist(reference_model, mnist):
    """The old Keras model's recipe (784-128-10, Adam 1e-3, batch 32, 5 epochs) on all 60k images."""
    _, (xt, yt) = mnist
    accuracy = ml.accuracy(yt, reference_model.predict(xt))
    assert accuracy >= 0.97, accuracy
    assert reference_model.layer_sizes == [784, 128, 10]


def test_reference_recipe_is_the_old_keras_model():
    r = ml.REFERENCE
    assert (r.layer_sizes, r.optimizer, r.lr, r.batch_size, r.epochs) == ([784, 128, 10], "adam", 1e-3, 32, 5)
    assert (r.schedule, r.label_smoothing, r.shift, r.dropout, r.weight_decay) == (
        "constant", 0.0, 0, 0.0, 0.0)


def test_small_batches_multiply_only_inked_columns_with_the_same_result():
    """logits of a few rows (the service's path reads only the inked pixels' weight rows) match the
    full product: sparse digits, a blank row, an all-blank input, and inputs inked all over."""
    rng = np.random.default_rng(3)
    model = ml.build(ml.TrainConfig(hidden=(64, 32), seed=1))
    x = np.where(rng.random((5, 784)) < 0.2, rng.random((5, 784)), 0).astype(np.float32)
    x[2] = 0
    (w1, b1), (w2, b2), (w3, b3) = model.weights
    for rows in (x[:1], x, np.zeros((1, 784), np.float32), np.ones((2, 784), np.float32)):
        ref = np.maximum(np.maximum(rows @ w1 + b1, 0) @ w2 + b2, 0) @ w3 + b3
        np.testing.assert_allclose(model.logits(rows), ref, rtol=1e-5, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.02, 0.2, 0.45, 0.55, 1.0]))
def test_one_image_from_its_pixels_scores_as_its_float_row(seed, share):
    """An upload's uint8 pixels go to the first layer as they are: the very bits the float row (to_float)
    gives, for sparse digits, blank images and images inked over half their pixels (the full product)."""
    rng = np.random.default_rng(seed)
    image = np.where(rng.random((1, 28, 28)) < share, rng.integers(0, 256, (1, 28, 28)), 0).astype(np.uint8)
    model = _PIXELS_MODEL
    x = to_float(image)
    assert model.logits(image.reshape(784)).tobytes() == model.logits(x).tobytes()
    (p, top), (pf, topf) = model.predict_scores(image), model.predict_scores(x)
    assert p.tobytes() == pf.tobytes() and top.tobytes() == topf.tobytes()


_PIXELS_MODEL = ml.build(ml.TrainConfig(hidden=(64, 32), seed=2))
_PIXELS_MODEL.calibration = Calibration(0.7, 0.5, 0.3)
