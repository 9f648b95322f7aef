"""Weight averaging at the end of a fit: the mean of the snapshots it says it takes, and the knob's edges."""
import numpy as np
import pytest

import mnistlite as ml
from mnistlite import recipe
from mnistlite.nn import averaging
from mnistlite.nn.config import ConfigError, TrainConfig
from mnistlite.nn.optim import make_optimizer


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 784), dtype=np.float32) * 0.2
    for k in range(3):
        x[y == k, k * 200:k * 200 + 100] += 0.8
    return x, y


class Recording:
    """An Adam that keeps a copy of the parameters after every step."""

    def __init__(self):
        self.inner, self.after = make_optimizer("adam", 0.01), []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def step(self, lr=None):
        self.inner.step(lr)
        self.after.append(self.inner.params.copy())


@pytest.mark.parametrize("average_epochs", [1, 2, 3])
def test_the_fit_keeps_the_mean_of_the_weights_every_few_steps_over_its_last_epochs(average_epochs):
    x, y = blobs(300)   # 10 steps an epoch at batch 32
    model, opt = ml.MLP([784, 16, 3], seed=1), Recording()
    model.fit(x, y, epochs=3, batch_size=32, optimizer=opt, schedule="cosine", average_epochs=average_epochs)
    start = (3 - average_epochs) * 10          # index of the first averaged step (step start + 1)
    taken = list(range(start, 30, averaging.EVERY))
    if taken[-1] != 29:
        taken.append(29)                       # the last step's weights always count
    expected = np.mean([opt.after[i].astype(np.float64) for i in taken], axis=0).astype(np.float32)
    np.testing.assert_array_equal(model.flat_params, expected)
    assert not np.array_equal(model.flat_params, opt.after[-1])


def test_without_averaging_the_fit_keeps_its_last_step():
    x, y = blobs(300)
    model, opt = ml.MLP([784, 16, 3], seed=1), Recording()
    model.fit(x, y, epochs=2, batch_size=32, optimizer=opt)
    np.testing.assert_array_equal(model.flat_params, opt.after[-1])


def test_the_recipe_averages_before_it_calibrates():
    x, y = blobs(400)
    config = TrainConfig(hidden=(16,), n_classes=3, epochs=3, batch_size=32, augment=0.0, shift=0,
                         outliers=0.0, val_split=0.25)
    plain, _, _ = recipe.fit_recipe(config, x, y, threads=1)
    averaged, _, _ = recipe.fit_recipe(config.replace(average_epochs=2), x, y, threads=1)
    assert averaged.config.average_epochs == 2
    assert not np.array_equal(plain.flat_params, averaged.flat_params)
    # the temperature was fitted on the weights the model keeps
    val = recipe.split_validation(x, y, 0.25, np.random.default_rng([0, 1]))[1]
    again = recipe.calibrate(averaged, *val)
    assert again.temperature == pytest.approx(averaged.calibration.temperature)


@pytest.mark.parametrize("changes, fields", [
    ({"average_epochs": -1}, ("average_epochs", "epochs")),
    ({"average_epochs": 5, "epochs": 4}, ("average_epochs", "epochs")),
    ({"average_epochs": 2, "patience": 3}, ("average_epochs", "patience")),
])
def test_a_bad_average_is_refused_at_the_edge(changes, fields):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**changes)
    assert err.value.fields == fields and "average_epochs" in str(err.value)


def test_fit_refuses_an_average_longer_than_the_fit():
    x, y = blobs(60)
    with pytest.raises(ValueError, match="average_epochs must be in"):
        ml.MLP([784, 3]).fit(x, y, epochs=2, average_epochs=3)


def test_an_old_config_without_the_knob_loads_with_averaging_off():
    old = TrainConfig().to_dict()
    del old["average_epochs"]
    assert TrainConfig.from_dict(old).average_epochs == 0
