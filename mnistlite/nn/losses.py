"""Softmax and the fused softmax + cross-entropy loss (with optional label smoothing)."""
from __future__ import annotations

import numpy as np

from .arrays import amax as _max
from .arrays import amin as _min
from .arrays import asum as _sum

F32 = np.float32
OUTLIER = -1  # the label of a training example that is no class at all: its target is uniform


def log_softmax(z):
    """Row-wise log-softmax of z: (n, k) float32, stable for huge logits (shifts by the row max)."""
    shifted = z - z.max(axis=1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return shifted


def softmax(z):
    """Row-wise softmax of z: (n, k) float32 -> (n, k) float32, each row summing to 1."""
    p = z - z.max(axis=1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels, fused for stability.

    With label smoothing ``eps`` the target is ``(1 - eps) * onehot + eps / k``. A label of -1 (``OUTLIER``)
    marks an example of no class (outlier exposure): its target is uniform, 1 / k for every class.
    ``backward`` returns ``(p - target) / n``, the exact gradient of the mean loss with respect to the logits.
    """

    def __init__(self, label_smoothing: float = 0.0):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.eps = float(label_smoothing)
        self._p = self._total = self._y_at = self._row_starts = self._k = self._outliers = None

    def forward(self, logits, y) -> float:
        """logits: (n, k) float32, y: (n,) int labels in [0, k). Returns the mean loss."""
        logits = np.ascontiguousarray(logits)  # backward edits p through a flat view: C order
        n, k = logits.shape
        y = np.asarray(y)
        if self._row_starts is None or self._row_starts.shape != (n,) or self._k != k:
            self._row_starts, self._k = np.arange(0, n * k, k), k
        # ufuncs' own reduce and ndarray methods, not the numpy functions that wrap them: this runs once
        # per training step, on arrays so small that the wrappers' Python cost is most of the time
        if n and not (OUTLIER <= _min(y) and _max(y) < k):
            raise ValueError(f"labels must be in [0, {k}) or {OUTLIER} (no class), got {y.min()}..{y.max()}")
        if n and _min(y) < 0:
            return self._forward_with_outliers(logits, y, y < 0)
        self._outliers = None
        self._y_at = self._row_starts + y  # flat index of each row's label
        shifted = logits - _max(logits, axis=1, keepdims=True)
        p = np.exp(shifted)
        total = _sum(p, axis=1)
        log_total = np.log(total)
        # mean of -log p[y] = mean(log total - shifted[y])
        loss = float(_sum(log_total) - _sum(shifted.take(self._y_at))) / n
        if self.eps:
            # smoothing adds eps * (mean over classes of -log p) - eps * (-log p[y])
            mean_logp = float(shifted.sum() / k - log_total.sum()) / n
            loss = (1.0 - self.eps) * loss - self.eps * mean_logp
        self._p, self._total = p, total  # normalised in backward, which only training needs
        return loss

    def backward(self):
        """Gradient of the last ``forward`` loss w.r.t. its logits: (n, k) float32, ``(p - target) / n``.
        Call it once per ``forward``: it works in place."""
        grad, total = self._p, self._total
        n, k = grad.shape
        # the mean's 1 / n folded into the softmax's normalisation: one pass over p
        np.multiply(total, F32(n), out=total)
        grad /= total[:, None]
        flat = grad.reshape(-1)
        flat[self._y_at] -= F32((1.0 - self.eps) / n)
        if self.eps:
            grad -= F32(self.eps / (k * n))
        if self._outliers is not None:  # their target is uniform: no one-hot part, the full 1 / k
            grad[self._outliers] -= F32((1.0 - self.eps) / (k * n))
        return grad

    def _forward_with_outliers(self, logits, y, outliers) -> float:
        """``forward`` for a batch holding outlier rows (label -1), whose target is uniform."""
        n, k = logits.shape
        inliers = ~outliers
        self._outliers = outliers
        self._y_at = self._row_starts[inliers] + y[inliers]
        shifted = logits - _max(logits, axis=1, keepdims=True)
        p = np.exp(shifted)
        total = _sum(p, axis=1)
        log_total = np.log(total)
        minus_mean_logp = log_total - shifted.sum(axis=1) / k   # per row: cross-entropy to uniform
        loss_in = float(_sum(log_total[inliers]) - _sum(shifted.take(self._y_at)))
        loss = (1.0 - self.eps) * loss_in + self.eps * float(minus_mean_logp[inliers].sum())
        loss += float(minus_mean_logp[outliers].sum())
        self._p, self._total = p, total
        return loss / n
