"""Named recipes, and running a TrainConfig: build its model, fit it with the digit augmentation,
and (``fit_recipe``) measure it as the CLI does.

``MLP.fit`` is the training entry point; ``train`` and ``fit_recipe`` are conveniences over it.
"""
from __future__ import annotations

import time

import numpy as np

from .data.mnist import data_sha256
from .images.augment import has_margin, training_hook
from .metrics import scores
from .nn.arrays import to_model_input
from .nn.config import ConfigError, TrainConfig
from .nn.model import MLP
from .nn.optim import make_optimizer
from .nn.rng import as_generator
from .threads import ContentionWatch, resolve_threads

# The previous Keras model, kept as the speed/accuracy reference: 784-128-10, Adam 1e-3, batch 32.
REFERENCE = TrainConfig(hidden=(128,), optimizer="adam", lr=1e-3, batch_size=32, epochs=5,
                        schedule="constant", label_smoothing=0.0, shift=0, augment=0.0)

# The project's default recipe (what `scripts/train.py` trains with no flags): TrainConfig's defaults,
# 784-512-256-10, Adam 2e-3 with a cosine schedule, batch 256, label smoothing 0.1, +-1 pixel shifts,
# half of each batch's images with a blank margin distorted, 24 epochs.
DEFAULT = TrainConfig()

RECIPES = {"default": DEFAULT, "reference": REFERENCE}


def build(config: TrainConfig) -> MLP:
    """A fresh, untrained MLP for ``config`` (sizes, activation, dropout, seed)."""
    return MLP(config.layer_sizes, activation=config.activation, dropout=config.dropout,
               seed=config.seed, config=config)


def train(config: TrainConfig, x, y, *, validation_data=None, callbacks=()):
    """``MLP.fit`` with every setting taken from ``config``: builds the model and optimizer, fits x, y.

    Returns (model, history).
    """
    model = build(config)
    opt = make_optimizer(config.optimizer, config.lr, momentum=config.momentum,
                         nesterov=config.nesterov, weight_decay=config.weight_decay)
    # AdamW decays the weights itself; the other optimizers get weight_decay as an L2 term in the loss
    l2 = 0.0 if config.optimizer == "adamw" else config.weight_decay
    hook = training_hook(config.augment, config.shift, model.rng)
    history = model.fit(x, y, epochs=config.epochs, batch_size=config.batch_size, optimizer=opt,
                        schedule=config.schedule, validation_data=validation_data,
                        label_smoothing=config.label_smoothing, weight_decay=l2, batch_hook=hook,
                        patience=config.patience, callbacks=callbacks)
    return model, history


def split_validation(x, y, share: float, rng):
    """Hold out a random ``share`` of (x, y) as validation data: returns (x, y), (vx, vy) or None."""
    if not share:
        return (x, y), None
    n_val = max(1, int(round(len(x) * share)))
    order = as_generator(rng).permutation(len(x))
    val, keep = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (x[keep], y[keep]), (x[val], y[val])


def fit_recipe(config: TrainConfig, images, labels, test_images=None, test_labels=None, *,
               threads: int | None = None, callbacks=()):
    """``train`` plus what the CLI reports: a ``val_split`` hold-out, BLAS threads, fit time, test metrics.

    ``threads`` pins the BLAS threads (as does OPENBLAS_NUM_THREADS); otherwise they follow the idle CPUs
    this process may use, and drop between epochs when other work takes the cores (``threads.py``).
    images/labels: uint8 (n, 28, 28) or float32 (n, 784), (n,) ints. Returns (model, history, report):
    report holds test_accuracy (when test data is given), train_seconds (wall time of the fit alone),
    epochs, augment_reach (the share of images with a blank margin, which the distortions apply to),
    and the training data's SHA-256. ``callbacks`` go to ``MLP.fit`` (progress, for one).
    """
    from threadpoolctl import threadpool_limits

    if config.patience and not config.val_split:
        raise ConfigError(("patience", "val_split"), f"patience {config.patience} (early stopping) needs "
                          "validation data: val_split must be > 0")
    x = to_model_input(images, config.n_inputs)
    y = np.asarray(labels, dtype=np.int64)
    # A separate stream for the split keeps the model's own draws identical with or without it.
    (x_fit, y_fit), val = split_validation(x, y, config.val_split, np.random.default_rng([config.seed, 1]))
    choice = resolve_threads(threads)
    callbacks = list(callbacks) if choice.pinned else [*callbacks, ContentionWatch(choice)]
    with threadpool_limits(limits=choice.threads, user_api="blas"):
        t0 = time.perf_counter()
        model, history = train(config, x_fit, y_fit, validation_data=val, callbacks=callbacks)
        seconds = time.perf_counter() - t0
    report = {
        "train_seconds": round(seconds, 3),
        "epochs": len(history["epoch"]),
        **choice.as_dict(),
        "n_train": int(len(y_fit)),
        "n_val": int(len(val[1])) if val else 0,
        "train_loss": history["loss"][-1],
        "train_accuracy": history["acc"][-1],
        "val_loss": history["val_loss"][-1],
        "val_accuracy": history["val_acc"][-1],
        # the share of training images the distortions can reach (the rest fill their frame)
        "augment_reach": float(has_margin(x_fit).mean()) if config.augment else 0.0,
    }
    model.metadata["training_data_sha256"] = data_sha256(np.asarray(images), y)
    if test_images is not None:
        xt = to_model_input(test_images, config.n_inputs)
        yt = np.asarray(test_labels, dtype=np.int64)
        test = scores(yt, model.predict_proba(xt), config.n_classes)
        report.update({f"test_{k}": v for k, v in test.items() if k != "n"})
        report.update({"n_test": test["n"], "test_set_sha256": data_sha256(np.asarray(test_images), yt)})
    return model, history, report
