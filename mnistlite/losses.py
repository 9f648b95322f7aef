"""Softmax and the fused softmax + cross-entropy loss (with optional label smoothing)."""
from __future__ import annotations

import numpy as np

F32 = np.float32


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

    With label smoothing ``eps`` the target is ``(1 - eps) * onehot + eps / k``. ``backward`` returns
    ``(p - target) / n``, the exact gradient of the mean loss with respect to the logits.
    """

    def __init__(self, label_smoothing: float = 0.0):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.eps = float(label_smoothing)
        self._p = self._y = self._rows = None

    def forward(self, logits, y) -> float:
        """logits: (n, k) float32, y: (n,) int labels in [0, k). Returns the mean loss."""
        n, k = logits.shape
        if self._rows is None or len(self._rows) != n:
            self._rows = np.arange(n)
        shifted = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        total = p.sum(axis=1)
        # mean of -log p[y] = mean(log total - shifted[y]); p itself is kept for backward
        loss = float(np.log(total).mean() - shifted[self._rows, y].mean())
        if self.eps:
            # smoothing adds eps * (mean over classes of -log p) - eps * (-log p[y])
            mean_logp = shifted.mean(axis=1) - np.log(total)
            loss = (1.0 - self.eps) * loss - self.eps * float(mean_logp.mean())
        p /= total[:, None]
        self._p, self._y = p, y
        return loss

    def backward(self):
        """Gradient of the last ``forward`` loss w.r.t. its logits: (n, k) float32."""
        grad = self._p
        n, k = grad.shape
        grad[self._rows, self._y] -= F32(1.0 - self.eps)
        if self.eps:
            grad -= F32(self.eps / k)
        grad *= F32(1.0 / n)
        return grad
