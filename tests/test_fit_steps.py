"""The pieces of MLP.fit on small synthetic data: mini-batches, the lr stream, early stopping, errors."""
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mnistlite as ml
from mnistlite import threads as thread_policy
from mnistlite.nn.optim import SCHEDULES
from mnistlite.nn.steps import learning_rates, minibatches


def blobs(n=300, seed=0):
    """Three separable classes in 784 dimensions: float32 (n, 784) in [0, 1], int64 (n,)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 784), dtype=np.float32) * 0.2
    for k in range(3):
        x[y == k, k * 200:k * 200 + 100] += 0.8  # a block of bright pixels per class
    return x, y


@given(n=st.integers(1, 300), batch_size=st.integers(1, 64), seed=st.integers(0, 2**32 - 1))
def test_minibatches_cover_every_row_once_in_the_seeded_order(n, batch_size, seed):
    x = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(n) * 10
    batches = list(minibatches(x, y, batch_size, seed))
    sizes = [len(yb) for _, yb in batches]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    rows = np.concatenate([xb[:, 0] for xb, _ in batches]).astype(np.int64)
    # one permutation draw per epoch from the given seed, cut in order; labels stay with their rows
    np.testing.assert_array_equal(rows, np.random.default_rng(seed).permutation(n))
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), rows * 10)
    assert all(xb.dtype == np.float32 and xb.shape == (len(yb), 3) for xb, yb in batches)


def test_minibatches_draw_from_a_shared_generator_epoch_after_epoch():
    x, y = blobs(50)
    rng = np.random.default_rng(4)
    first = np.concatenate([yb for _, yb in minibatches(x, y, 8, rng)])
    second = np.concatenate([yb for _, yb in minibatches(x, y, 8, rng)])
    replay = np.random.default_rng(4)
    np.testing.assert_array_equal(first, y[replay.permutation(50)])
    np.testing.assert_array_equal(second, y[replay.permutation(50)])
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_learning_rates_follow_the_schedule_step_by_step(schedule):
    lrs = list(learning_rates(0.5, schedule, 40))
    assert len(lrs) == 40
    assert lrs == [0.5 * SCHEDULES[schedule](step, 40) for step in range(40)]
    if schedule == "cosine":
        assert lrs[0] == 0.5 and lrs[-1] < 0.01


def test_a_bad_schedule_fails_before_training_starts():
    with pytest.raises(ValueError, match="schedule must be one of"):
        learning_rates(0.1, "linear", 10)
    model = ml.MLP([784, 3], seed=0)
    before = model.flat_params.copy()
    x, y = blobs(40)
    with pytest.raises(ValueError, match="schedule must be one of"):
        model.fit(x, y, epochs=1, schedule="linear")
    np.testing.assert_array_equal(model.flat_params, before)


class FakeModel:
    def __init__(self):
        self.flat_params = np.zeros(3, np.float32)


def test_early_stopping_counts_epochs_without_a_lower_val_loss_and_restores_the_best():
    stop, model = ml.EarlyStopping(2), FakeModel()
    decisions = []
    for epoch, val_loss in enumerate([3.0, 2.0, 2.0, 2.5], start=1):
        model.flat_params[:] = epoch
        decisions.append(stop({"epoch": epoch, "val_loss": val_loss}, model))
    assert decisions == [False, False, False, True]  # an equal loss is no improvement
    stop.on_train_end(model)
    np.testing.assert_array_equal(model.flat_params, [2, 2, 2])
    # the instance is fresh again: a second fit starts counting from scratch
    model.flat_params[:] = 9
    assert stop({"epoch": 1, "val_loss": 5.0}, model) is False
    stop.on_train_end(model)
    np.testing.assert_array_equal(model.flat_params, [9, 9, 9])


def test_early_stopping_needs_a_patience_and_validation_data():
    with pytest.raises(ValueError, match="patience must be >= 1, got 0"):
        ml.EarlyStopping(0)
    with pytest.raises(ValueError, match="needs validation data"):
        ml.EarlyStopping(1)({"epoch": 1, "val_loss": None}, FakeModel())
    x, y = blobs(40)
    with pytest.raises(ValueError, match="needs validation_data"):
        ml.MLP([784, 3]).fit(x, y, patience=1)


def test_fit_stops_and_restores_through_the_callback():
    x, y = blobs(300)
    vx, vy = blobs(200, seed=1)
    vy = (vy + 1) % 3  # validation labels the training data contradicts: val loss rises at once
    model = ml.MLP([784, 16, 3], seed=0)
    first = {}

    def keep_first(record, m):
        if record["epoch"] == 1:
            first["params"] = m.flat_params.copy()

    history = model.fit(x, y, epochs=20, batch_size=32, optimizer=ml.Adam(1e-2),
                        validation_data=(vx, vy), callbacks=[keep_first], patience=1)
    assert history["epoch"] == [1, 2]
    assert history["val_loss"][1] >= history["val_loss"][0]
    np.testing.assert_array_equal(model.flat_params, first["params"])


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be >= 1, got 0"),
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ({"weight_decay": -0.5}, "weight_decay must be >= 0, got -0.5"),
])
def test_fit_names_bad_settings_in_library_terms(kwargs, message):
    x, y = blobs(20)
    with pytest.raises(ValueError, match=message) as info:
        ml.MLP([784, 3]).fit(x, y, **kwargs)
    assert "--" not in str(info.value)


def test_batch_hook_sees_every_batch_and_may_change_its_labels():
    """fit trains on what the hook returns: a hook that swaps two classes' labels teaches the swap."""
    x, y = blobs(300)
    calls = []

    def swap(xb, yb, rng):
        calls.append(len(yb))
        assert isinstance(rng, np.random.Generator)
        return xb, np.where(yb == 0, 1, np.where(yb == 1, 0, yb))

    model = ml.MLP([784, 16, 3], seed=0)
    model.fit(x, y, epochs=3, batch_size=64, optimizer=ml.Adam(1e-2), batch_hook=swap)
    assert sum(calls) == 3 * len(y) and len(calls) == 3 * math.ceil(len(y) / 64)
    pred = model.predict(x)
    assert np.mean(pred[y == 0] == 1) > 0.9 and np.mean(pred[y == 1] == 0) > 0.9


def test_a_diverging_fit_stops_with_the_epoch_and_the_cause():
    x, y = blobs(300)
    with pytest.raises(ml.TrainingDiverged, match=r"epoch 1: the (loss|weights) became non-finite"
                                                  r" \(learning rate 1e\+20\)"):
        ml.MLP([784, 16, 3], seed=0).fit(x, y, epochs=5, batch_size=64, optimizer=ml.SGD(1e20))


def test_fit_rejects_empty_and_mismatched_data():
    with pytest.raises(ValueError, match="no rows"):
        ml.MLP([784, 3]).fit(np.zeros((0, 784), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="matching x's 4 rows"):
        ml.MLP([784, 3]).fit(np.zeros((4, 784), np.float32), np.zeros(3, np.int64))


def test_config_errors_name_their_fields():
    with pytest.raises(ml.ConfigError, match="epochs must be >= 1, got 0") as info:
        ml.TrainConfig(epochs=0)
    assert info.value.fields == ("epochs",)
    with pytest.raises(ml.ConfigError) as info:
        ml.TrainConfig(optimizer="adam", nesterov=True)
    assert info.value.fields == ("nesterov", "optimizer")
    assert isinstance(info.value, ValueError)


def test_fit_recipe_prints_nothing_and_reports(capsys):
    x, y = blobs(400)
    images = (x.reshape(-1, 28, 28) * 255).astype(np.uint8)
    seen = []
    config = ml.TrainConfig(hidden=(8,), epochs=2, batch_size=32, lr=1e-2, augment=0.0, shift=0, n_classes=3,
                            outliers=0.0, val_split=0.25)
    model, history, report = ml.fit_recipe(config, images, y, images[:50], y[:50],
                                           callbacks=[lambda record, m: seen.append(record["epoch"])])
    assert capsys.readouterr() == ("", "")
    assert seen == [1, 2] and report["epochs"] == 2
    assert (report["n_train"], report["n_val"], report["n_test"]) == (300, 100, 50)
    assert report["test_accuracy"] > 0.9 and math.isfinite(report["val_loss"])


def test_fit_recipe_wants_a_validation_split_for_early_stopping():
    x, y = blobs(40)
    with pytest.raises(ml.ConfigError, match="needs validation data: val_split must be > 0") as info:
        ml.fit_recipe(ml.TrainConfig(hidden=(4,), n_classes=3, patience=2, val_split=0.0), x, y)
    assert info.value.fields == ("patience", "val_split")


@pytest.mark.parametrize("idle, threads", [(2.0, 2), (1.8, 2), (1.7, 1), (1.0, 1), (0.1, 1), (0.0, 1),
                                           (3.9, 4), (12.0, 4)])
def test_blas_threads_one_per_idle_core(idle, threads):
    """A BLAS thread on a busy core stalls every product, so fits take one per idle core (up to 4)."""
    assert thread_policy.blas_threads(idle) == threads


def test_idle_cores_sees_a_busy_core():
    """Over a quiet spell the measured idle cores stay within the machine's; a busy loop in another
    process takes about one of them away."""
    cores = os.cpu_count() or 1
    quiet = thread_policy.idle_cores(0.3)
    assert 0.0 <= quiet <= cores + 1e-9
    if quiet < 0.9:
        pytest.skip(f"only {quiet:.1f} cores idle: too busy to see one more busy core")
    spin = "import time\nt = time.time() + 3\nwhile time.time() < t: pass"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.5)
        loaded = thread_policy.idle_cores(0.5)
    finally:
        busy.kill()
        busy.wait()
    assert loaded <= quiet - 0.5
