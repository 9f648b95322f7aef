"""fit_recipe validates once after the last epoch when nothing reads the per-epoch figures: the same
weights and the same final validation figures as validating every epoch."""
from __future__ import annotations

import numpy as np

import mnistlite as ml


def test_validation_once_gives_the_figures_of_validation_each_epoch(mnist_uint8):
    (x, y), _ = mnist_uint8
    config = ml.TrainConfig(hidden=(32,), epochs=2, batch_size=128, val_split=0.2, augment=0.0, outliers=0.0)
    seen = []
    runs = []
    for callbacks in ([], [lambda record, model: seen.append(record["val_loss"])]):
        model, history, report = ml.fit_recipe(config, x[:3000], y[:3000], threads=1, callbacks=callbacks)
        runs.append((model.flat_params.copy(), history, report))
    (w_once, h_once, r_once), (w_each, h_each, r_each) = runs
    assert np.array_equal(w_once, w_each)
    assert len(seen) == 2 and None not in seen and seen == h_each["val_loss"]
    assert h_once["val_loss"][0] is None and h_once["val_loss"][-1] == h_each["val_loss"][-1]
    assert (r_once["val_loss"], r_once["val_accuracy"]) == (r_each["val_loss"], r_each["val_accuracy"])
    assert model.calibration is not None
