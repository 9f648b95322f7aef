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


@pytest.mark.parametrize("average, steps", [(0.1, 3), (1 / 3, 10), (0.5, 15), (1.0, 30)])
def test_the_fit_keeps_the_mean_of_the_weights_every_few_steps_over_its_end(average, steps):
    x, y = blobs(300)   # 10 steps an epoch at batch 32: 30 steps, the last ``steps`` of them averaged
    model, opt = ml.MLP([784, 16, 3], seed=1), Recording()
    model.fit(x, y, epochs=3, batch_size=32, optimizer=opt, schedule="cosine", average=average)
    start = 30 - steps                         # index of the first averaged step
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
    averaged, _, _ = recipe.fit_recipe(config.replace(average=0.5), x, y, threads=1)
    assert averaged.config.average == 0.5
    assert not np.array_equal(plain.flat_params, averaged.flat_params)
    # the temperature was fitted on the weights the model keeps
    val = recipe.split_validation(x, y, 0.25, np.random.default_rng([0, 1]))[1]
    again = recipe.calibrate(averaged, *val)
    assert again.temperature == pytest.approx(averaged.calibration.temperature)


@pytest.mark.parametrize("changes, fields", [
    ({"average": -0.1}, ("average",)),
    ({"average": 1.5}, ("average",)),
])
def test_a_bad_average_is_refused_at_the_edge(changes, fields):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**changes)
    assert err.value.fields == fields and "average" in str(err.value)


def test_fit_refuses_an_average_outside_the_fit():
    x, y = blobs(60)
    with pytest.raises(ValueError, match="average must be in"):
        ml.MLP([784, 3]).fit(x, y, epochs=2, average=1.2)


def test_a_short_fit_averages_what_it_has():
    """The knob is a share of the fit, so any --epochs works with the default recipe's averaging."""
    x, y = blobs(60)
    plain, short = ml.MLP([784, 3], seed=2), ml.MLP([784, 3], seed=2)
    plain.fit(x, y, epochs=1, batch_size=60)
    short.fit(x, y, epochs=1, batch_size=60, average=0.25)   # round(0.25 steps): nothing to average
    np.testing.assert_array_equal(plain.flat_params, short.flat_params)
    TrainConfig(epochs=1, average=0.25)


def test_an_old_config_without_the_knob_loads_with_averaging_off():
    old = TrainConfig(average=0.25).to_dict()
    del old["average"]
    assert TrainConfig.from_dict(old).average == 0.0


def test_an_old_model_file_reads_as_not_averaged(tmp_path):
    """A file written before the knob existed has no average in its config: it kept its last step."""
    import json

    from mnistlite.serialize import META_KEY

    model = ml.MLP([784, 8, 10], config=TrainConfig(hidden=(8,), average=0.25))
    path = ml.save(model, tmp_path / "new.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays[META_KEY].tobytes())
    del meta["config"]["average"]
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    old = ml.load(tmp_path / "old.npz")
    assert old.config.average == 0.0
    assert old.config.replace(average=0.25) == model.config


def test_a_config_without_averaging_is_saved_as_earlier_versions_read_it():
    # earlier versions refuse unknown fields: the off knob must not appear in the saved config
    d = TrainConfig().to_dict()
    assert "average" not in d
    assert TrainConfig.from_dict(d) == TrainConfig()
    assert TrainConfig.from_dict(TrainConfig(average=0.25).to_dict()).average == 0.25
