"""Run a TrainConfig: build its model and optimizer, and (``fit_recipe``) measure it as the CLI does.

``MLP.fit`` is the training entry point; ``train`` and ``fit_recipe`` are conveniences over it.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .augment import has_margin
from .config import ConfigError, TrainConfig
from .data.mnist import data_sha256
from .metrics import accuracy, log_loss, per_class_report
from .model import MLP
from .optim import make_optimizer
from .preprocess import to_model_input
from .utils import as_generator


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
    history = model.fit(x, y, epochs=config.epochs, batch_size=config.batch_size, optimizer=opt,
                        schedule=config.schedule, validation_data=validation_data,
                        label_smoothing=config.label_smoothing, weight_decay=config.weight_decay,
                        shift=config.shift, augment=config.augment, patience=config.patience,
                        callbacks=callbacks)
    return model, history


def idle_cores(interval: float = 0.1) -> float:
    """How many cores sat idle over the next ``interval`` seconds, from /proc/stat; where that file is
    missing (not Linux), the core count minus the one-minute load average."""
    cores = os.cpu_count() or 1

    def sample():
        with open("/proc/stat") as f:
            ticks = [int(t) for t in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)   # idle + iowait, all

    try:
        idle0, all0 = sample()
        time.sleep(interval)
        idle1, all1 = sample()
    except (OSError, ValueError, IndexError):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return max(0.0, cores - load)
    return cores * (idle1 - idle0) / max(all1 - all0, 1)


def blas_threads(idle: float | None = None) -> int:
    """BLAS threads for a fit: one per idle core (``idle_cores()`` by default), at least 1, at most 4.

    OpenBLAS threads wait for each other by spinning, so a thread that shares its core with other
    work stalls every product; a core counts as idle when it was at least 75% idle.
    """
    if idle is None:
        idle = idle_cores()
    return max(1, min(int(idle + 0.25), 4))


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
    threads = threads or blas_threads()
    with threadpool_limits(limits=threads, user_api="blas"):
        t0 = time.perf_counter()
        model, history = train(config, x_fit, y_fit, validation_data=val, callbacks=callbacks)
        seconds = time.perf_counter() - t0
    report = {
        "train_seconds": round(seconds, 3),
        "epochs": len(history["epoch"]),
        "blas_threads": threads,
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
        proba = model.predict_proba(xt)
        pred = proba.argmax(axis=1)
        report.update({
            "test_accuracy": accuracy(yt, pred),
            "test_log_loss": log_loss(yt, proba),
            "n_test": int(len(yt)),
            "test_per_class": per_class_report(yt, pred, config.n_classes),
            "test_set_sha256": data_sha256(np.asarray(test_images), yt),
        })
    return model, history, report
