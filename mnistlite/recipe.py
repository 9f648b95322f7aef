"""Named recipes, and running a TrainConfig: build its model, fit it with the digit augmentation,
and (``fit_recipe``) measure it as the CLI does.

``MLP.fit`` is the training entry point; ``train`` and ``fit_recipe`` are conveniences over it.
"""
from __future__ import annotations

import platform
import time

import numpy as np

from . import drift
from .data.mnist import data_sha256
from .images.augment import has_margin, training_hook
from .images.nondigits import outlier_hook, outlier_pool
from .metrics import expected_calibration_error, log_loss, scores
from .nn.arrays import to_model_input
from .nn.calibration import POLICY, Calibration, calibrated_proba, choose_thresholds, decide, fit_temperature
from .nn.config import ConfigError, TrainConfig
from .nn.model import MLP
from .nn.optim import make_optimizer
from .nn.producer import ProducerOrInProcess, why_not
from .nn.rng import as_generator
from .threads import ContentionWatch, blas_facts, children_cpu, resolve_threads, usable_cpus

# The previous Keras model, kept as the speed/accuracy reference: 784-128-10, Adam 1e-3, batch 32.
REFERENCE = TrainConfig(hidden=(128,), optimizer="adam", lr=1e-3, batch_size=32, epochs=5,
                        schedule="constant", label_smoothing=0.0, shift=0, augment=0.0, val_split=0.0,
                        outliers=0.0)

# The project's default recipe (what `scripts/train.py` trains with no flags): TrainConfig's defaults,
# 784-384-256-10, Adam 2e-3 with a cosine schedule, batch 256, label smoothing 0.1, +-1 pixel shifts,
# half of each batch's images with a blank margin distorted, 30 epochs; a tenth of the training data held
# out, and generated non-digits worth a fifth of each batch; after the fit the held-out tenth calibrates
# the probabilities and sets the reject thresholds (``calibrate``).
DEFAULT = TrainConfig()

RECIPES = {"default": DEFAULT, "reference": REFERENCE}
OUTLIER_POOL = 2400   # generated non-digits per fit; each batch draws from them, shifted and mirrored


def calibrate(model: MLP, x, y, policy: dict | None = None) -> Calibration:
    """Fit ``model``'s temperature and reject thresholds on held-out digits x, y (never the test set);
    sets and returns ``model.calibration``, whose ``held_out`` holds the figures before and after."""
    x = to_model_input(x, model.layer_sizes[0])
    y = np.asarray(y, dtype=np.int64)
    policy = {**POLICY, **(policy or {})}
    model.calibration = None
    # one forward pass: the raw and the calibrated probabilities are row-wise maps of the same logits
    logits = model.raw_logits(x)
    top = logits.max(axis=1)
    raw = calibrated_proba(logits.copy(), None)
    model.calibration = Calibration(temperature=fit_temperature(logits, y))
    p = calibrated_proba(logits.copy(), model.calibration)
    cal = Calibration(model.calibration.temperature, **choose_thresholds(p, y, policy, top), policy=policy)
    answered = decide(p, cal, top) == 0
    model.calibration = Calibration(**{**cal.to_dict(), "held_out": {
        "n": int(len(y)),
        "log_loss_before": log_loss(y, raw), "log_loss_after": log_loss(y, p),
        "ece_before": expected_calibration_error(y, raw), "ece_after": expected_calibration_error(y, p),
        "abstained": float(1 - answered.mean()),
        "error_answered": float((p.argmax(1)[answered] != y[answered]).mean()) if answered.any() else 0.0,
    }})
    return model.calibration

# fit_recipe's report entries that differ from run to run (or follow the machine's load) and so stay
# out of the model file, whose bytes must depend only on what determines the model: the metrics file
# and the registry record keep them.
PER_RUN = ("train_seconds", "train_cpu_seconds", "peak_rss_mb", "blas_threads", "blas_threads_pinned",
           "blas_threads_reason", "blas_thread_changes", "batch_producer", "trained_at", "created")


def model_metrics(report: dict) -> dict:
    """The report minus PER_RUN: what a model file keeps of its training metrics."""
    return {k: v for k, v in report.items() if k not in PER_RUN}


def build(config: TrainConfig) -> MLP:
    """A fresh, untrained MLP for ``config`` (sizes, activation, dropout, seed)."""
    return MLP(config.layer_sizes, activation=config.activation, dropout=config.dropout,
               seed=config.seed, config=config)


def train(config: TrainConfig, x, y, *, validation_data=None, callbacks=(), batch_source=None):
    """``MLP.fit`` with every setting taken from ``config``: builds the model and optimizer, fits x, y.

    Returns (model, history).
    """
    model = build(config)
    opt = make_optimizer(config.optimizer, config.lr, momentum=config.momentum,
                         nesterov=config.nesterov, weight_decay=config.weight_decay)
    # AdamW decays the weights itself; the other optimizers get weight_decay as an L2 term in the loss
    l2 = 0.0 if config.optimizer == "adamw" else config.weight_decay
    hook = training_hook(config.augment, config.shift, model.rng)
    if config.outliers:
        # its own stream, so the digits' draws stay as they were; the pool is drawn once per fit
        pool = outlier_pool(OUTLIER_POOL, np.random.default_rng([config.seed, 2]), x)
        hook = outlier_hook(config.outliers, pool, hook)
    history = model.fit(x, y, epochs=config.epochs, batch_size=config.batch_size, optimizer=opt,
                        schedule=config.schedule, validation_data=validation_data,
                        label_smoothing=config.label_smoothing, weight_decay=l2, batch_hook=hook,
                        patience=config.patience, callbacks=callbacks,
                        average=config.average, batch_source=batch_source)
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
               threads: int | None = None, callbacks=(), producer: bool = True):
    """``train`` plus what the CLI reports: a ``val_split`` hold-out, BLAS threads, fit time, test metrics.

    ``threads`` pins the BLAS threads (as does OPENBLAS_NUM_THREADS); otherwise they follow the idle CPUs
    this process may use, and drop between epochs when other work takes the cores (``threads.py``).
    images/labels: uint8 (n, 28, 28) or float32 (n, 784), (n,) ints. Returns (model, history, report):
    report holds test_accuracy (when test data is given), train_seconds (wall time of the fit alone) and
    train_cpu_seconds (its CPU time, every thread of the process and the batch producer's),
    batch_producer (where the batches were made: ``producer`` asks for a forked process, ``nn/producer.py``,
    which makes the very same batches while the fit steps, where fork and the recipe allow it),
    epochs, augment_reach (the share of images with a blank margin, which the distortions apply to),
    and the training data's SHA-256. ``callbacks`` go to ``MLP.fit`` (progress, for one). The model's
    metadata gets ``drift_reference`` (``drift.reference``: the class and confidence mix the service
    compares its answers with) from the test data, else the validation data, else the training data,
    and ``reproduce``: what besides the config and the data decides the bits (BLAS threads and library,
    numpy and Python versions). Per-run facts (seconds, peak memory) stay in the report (PER_RUN).
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
    # a fit without a batch hook (the reference recipe) gets in-process batches from ProducerOrInProcess
    off = "off" if not producer else why_not(config.dropout, usable_cpus(), threads=choice.threads)
    source = ProducerOrInProcess() if off is None else None
    with threadpool_limits(limits=choice.threads, user_api="blas"):
        t0, c0, k0 = time.perf_counter(), time.process_time(), children_cpu()
        # Validation figures every epoch only for what reads them (early stopping, progress, a callback
        # without needs_validation = False); otherwise once, after the last epoch: the same figures.
        each = bool(config.patience) or any(getattr(cb, "needs_validation", True) for cb in callbacks)
        model, history = train(config, x_fit, y_fit, validation_data=val if each else None,
                               callbacks=callbacks, batch_source=source)
        if val is not None:
            if not each:
                history["val_loss"][-1], history["val_acc"][-1] = model.evaluate(*val)
            calibrate(model, *val)
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - c0 + children_cpu() - k0
    report = {
        "train_seconds": round(seconds, 3),
        "train_cpu_seconds": round(cpu_seconds, 3),
        "epochs": len(history["epoch"]),
        **choice.as_dict(),
        "batch_producer": "process" if source and source.kind == "process" else
                          f"in-process ({off or source.why})",
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
    # The thread count decides the bits: the count a fit started with, and any change ContentionWatch
    # made on the way (only when the count was not pinned), are part of what reproducing it takes.
    blas = {**blas_facts(choice.threads), "pinned": choice.pinned,
            "changes": [list(c) for c in choice.changes]}
    model.metadata["reproduce"] = {"blas": blas, "numpy": np.__version__, "python": platform.python_version()}
    if test_images is not None:
        xt = to_model_input(test_images, config.n_inputs)
        yt = np.asarray(test_labels, dtype=np.int64)
        proba = model.predict_proba(xt)
        test = scores(yt, proba, config.n_classes)
        raw = model.predict_proba(xt, calibrated=False)
        report.update({f"test_{k}": v for k, v in test.items() if k != "n"})
        report.update({"test_log_loss_uncalibrated": log_loss(yt, raw),
                       "test_ece_uncalibrated": expected_calibration_error(yt, raw),
                       "n_test": test["n"], "test_set_sha256": data_sha256(np.asarray(test_images), yt)})
        model.metadata["drift_reference"] = drift.reference(proba, "test")
    else:
        source, xr = ("validation", val[0]) if val else ("training", x_fit)
        model.metadata["drift_reference"] = drift.reference(model.predict_proba(xr[:drift.REFERENCE_MAX]),
                                                            source)
    return model, history, report
