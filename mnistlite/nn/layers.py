"""Layers with ``forward(x)`` / ``backward(grad)``: Dense, Activation (ReLU, tanh), Dropout.

Every layer caches in ``forward`` what ``backward`` needs and reuses its output buffers, so a
training step allocates nothing parameter-sized. Everything is float32.
"""
from __future__ import annotations

import numpy as np

from .rng import as_generator

F32 = np.float32


# Initial weight scale by fan-in/fan-out: He for ReLU, Glorot (Xavier) for tanh.
INITS = {
    "he": lambda fan_in, fan_out: np.sqrt(2.0 / fan_in),
    "glorot": lambda fan_in, fan_out: np.sqrt(2.0 / (fan_in + fan_out)),
}


def _buffer(buf, shape, dtype=F32):
    """Reuse ``buf`` when it already has ``shape``; otherwise allocate (only on a new batch size)."""
    if buf is None or buf.shape != shape:
        return np.empty(shape, dtype=dtype)
    return buf


def _used_columns(x, most=0.75):
    """Indices of x's columns that are not all zero, or None when they are more than ``most`` of them."""
    cols = np.logical_or.reduce(x, axis=0).nonzero()[0]
    return cols if len(cols) <= most * x.shape[1] else None


class Dense:
    """Affine layer ``y = x @ W + b``; W: (n_in, n_out) float32, b: (n_out,) float32."""

    def __init__(self, n_in: int, n_out: int, *, init: str = "he", rng=None):
        if init not in INITS and init != "zeros":
            raise ValueError(f"init must be one of {sorted(INITS) + ['zeros']}, got {init!r}")
        if init == "zeros":  # for loading saved weights: no random draws wasted
            self.W = np.zeros((n_in, n_out), dtype=F32)
        else:
            scale = INITS[init](n_in, n_out)
            self.W = as_generator(rng).standard_normal((n_in, n_out), dtype=F32) * F32(scale)
        self.b = np.zeros(n_out, dtype=F32)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.needs_input_grad = True  # the first layer of a net skips dx: nobody uses it
        self._x = self._y = self._yT = self._dx = self._cols = self._ones = None

    @property
    def params(self):
        return [self.W, self.b]

    def forward(self, x, training: bool = False):
        n, m = x.shape[0], self.W.shape[1]
        self._cols = _used_columns(x) if training and not self.needs_input_grad else None
        if self._cols is None:
            self._x = x
            self._y = y = np.matmul(x, self.W, out=_buffer(self._y, (n, m)))
        else:
            # Pixels blank in the whole batch add nothing to y and get a zero weight gradient,
            # so both products run over the inked columns only (small batches of digits leave
            # many blank). Computed as y.T = W.T @ x.T: OpenBLAS shares that shape between threads,
            # but not (n, k) @ (k, m) with few rows n; the next layer reads the transposed view as is.
            self._x = x.take(self._cols, axis=1)
            self._yT = _buffer(self._yT, (m, n))
            y = np.matmul(self.W.take(self._cols, axis=0).T, self._x.T, out=self._yT).T
        y += self.b
        return y

    def backward(self, grad):
        if self._cols is None:
            np.matmul(self._x.T, grad, out=self.dW)
        else:
            self.dW.fill(0)
            self.dW[self._cols] = self._x.T @ grad
        # ones @ grad rather than grad.sum(axis=0): one BLAS call is cheaper than numpy's reduction here
        if self._ones is None or self._ones.shape != (grad.shape[0],):
            self._ones = np.ones(grad.shape[0], dtype=F32)
        np.matmul(self._ones, grad, out=self.db)
        if not self.needs_input_grad:
            return None
        self._dx = _buffer(self._dx, (grad.shape[0], self.W.shape[0]))
        return np.matmul(grad, self.W.T, out=self._dx)


# Activations work in place on the layer below's output buffer; derivatives are expressed in
# terms of the activation's *output*, so nothing else needs caching (scikit-learn's style).
def _relu(z):
    return np.maximum(z, 0, out=z)


def _relu_backward(y, grad, scratch):
    np.greater(y, 0, out=scratch)
    return np.multiply(grad, scratch, out=grad)


def _tanh(z):
    return np.tanh(z, out=z)


def _tanh_backward(y, grad, scratch):
    # d tanh = 1 - y^2
    np.multiply(y, y, out=scratch)
    np.subtract(1, scratch, out=scratch)
    return np.multiply(grad, scratch, out=grad)


ACTIVATIONS = {"relu": (_relu, _relu_backward, bool), "tanh": (_tanh, _tanh_backward, F32)}


class Activation:
    """Element-wise nonlinearity chosen by name from ``ACTIVATIONS``; works in place."""

    def __init__(self, name: str = "relu"):
        if name not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
        self.name = name
        self._fn, self._grad_fn, self._scratch_dtype = ACTIVATIONS[name]
        self._y = self._scratch = None

    def forward(self, x, training: bool = False):
        self._y = self._fn(x)
        return self._y

    def backward(self, grad):
        self._scratch = _buffer(self._scratch, grad.shape, self._scratch_dtype)
        return self._grad_fn(self._y, grad, self._scratch)


def ReLU():
    """Shorthand for ``Activation("relu")``."""
    return Activation("relu")


class Dropout:
    """Inverted dropout: in training, zero a share ``p`` of units and scale the rest by 1/(1-p)."""

    def __init__(self, p: float, *, rng=None):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng)
        self.mask = None  # (n, d) float32 of 0 and 1/(1-p); tests may set it to fix the draw
        self.fixed_mask = False

    def forward(self, x, training: bool = False):
        if not training or self.p == 0.0:
            self.mask = None
            return x
        if not self.fixed_mask:
            keep = self.rng.random(x.shape, dtype=F32) >= self.p
            self.mask = keep.astype(F32) * F32(1.0 / (1.0 - self.p))
        return np.multiply(x, self.mask, out=x)

    def backward(self, grad):
        if self.mask is None:
            return grad
        return np.multiply(grad, self.mask, out=grad)
