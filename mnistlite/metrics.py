"""Classification metrics on integer labels and probabilities; all vectorized, float64 results."""
from __future__ import annotations

from fractions import Fraction

import numpy as np


def accuracy(y_true, y_pred) -> float:
    """Share of labels predicted exactly: y_true, y_pred (n,) ints -> float in [0, 1]."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred shapes differ: {y_true.shape} vs {y_pred.shape}")
    return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def confusion_matrix(y_true, y_pred, n_classes: int = 10):
    """(k, k) int64 counts; row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def per_class_report(y_true, y_pred, n_classes: int = 10) -> dict:
    """Per-class precision, recall, F1 and support as lists of length k (0 where undefined)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "support": support.tolist()}


def log_loss(y_true, proba, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood of the true class; proba (n, k), clipped to [eps, 1]."""
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    picked = proba[np.arange(len(y_true)), y_true]
    return float(-np.mean(np.log(np.clip(picked, eps, 1.0)))) if len(y_true) else 0.0


def expected_calibration_error(y_true, proba, n_bins: int = 15) -> float:
    """ECE: sum over equal-width confidence bins of |bin accuracy - bin confidence| * bin share.

    proba (n, k) probabilities, y_true (n,) ints; confidence = max probability, bins (i/B, (i+1)/B].
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins!r}")
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if proba.ndim != 2 or proba.shape[0] != y_true.shape[0]:
        raise ValueError(f"proba must be (n, k) with n = len(y_true), got {proba.shape} for {y_true.shape}")
    if not len(y_true):
        return 0.0
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    # ceil-based index puts a confidence of exactly i/B in bin i-1, the usual right-closed bins
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    hits = np.bincount(idx, weights=correct, minlength=n_bins)
    gap = hits - np.bincount(idx, weights=conf, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y_true))


def scores(y_true, proba, n_classes: int = 10) -> dict:
    """What every report of a model on labelled data holds: accuracy, log_loss, ece, per_class, n.

    y_true (n,) ints, proba (n, k) float probabilities."""
    y_true = np.asarray(y_true)
    pred = np.asarray(proba).argmax(axis=1)
    return {"accuracy": accuracy(y_true, pred), "log_loss": log_loss(y_true, proba),
            "ece": expected_calibration_error(y_true, proba),
            "per_class": per_class_report(y_true, pred, n_classes), "n": int(len(y_true))}


def mcnemar_table(correct_a, correct_b) -> tuple[int, int]:
    """Discordant pair counts of two models on the same samples: (b, c).

    b = samples A got right and B got wrong, c = samples A got wrong and B got right; inputs (n,) bools.
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b shapes differ: {a.shape} vs {b.shape}")
    return int(np.count_nonzero(a & ~b)), int(np.count_nonzero(~a & b))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: P(X <= min(b, c)) * 2 (capped at 1) for X ~ Binomial(b + c, 1/2).

    Computed in exact integer arithmetic, so it neither underflows nor loses precision for large b + c.
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"b and c must be counts >= 0, got b={b!r}, c={c!r}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail, term = 0, 1  # term = comb(n, i), updated exactly
    for i in range(k + 1):
        tail += term
        term = term * (n - i) // (i + 1)
    # float(Fraction) rounds the exact ratio correctly even when 2**n overflows a float
    return min(1.0, float(Fraction(2 * tail, 1 << n)))


def percent(fraction: float) -> str:
    """A fraction as a percentage with two decimals: 0.99185 -> '99.19%' (rounded half to even)."""
    return f"{100 * fraction:.2f}%"
