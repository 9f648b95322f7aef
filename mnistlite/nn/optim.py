"""Optimizers (SGD with momentum/Nesterov, Adam, AdamW) and learning-rate schedules.

An optimizer is bound once to the model's flat parameter and gradient vectors (every layer's
arrays are views into them), so one step is about ten in-place numpy calls over one contiguous
float32 buffer: no per-step allocation of anything parameter-sized.
"""
from __future__ import annotations

import math

import numpy as np

F32 = np.float32


def _check_positive(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_unit(name, value):
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


class Optimizer:
    """Base class: ``bind(params, grads, decay_views)`` once, then ``step(lr)`` after each backward."""

    name = "base"

    def __init__(self, lr: float):
        _check_positive("lr", lr)
        self.lr = float(lr)
        self.t = 0
        self.params = self.grads = self._tmp = None
        self.decay_views = []

    def bind(self, params, grads, decay_views=()):
        """params, grads: (p,) float32 flat vectors; decay_views: weight views for decoupled decay."""
        assert params.shape == grads.shape and params.dtype == grads.dtype == F32
        self.params, self.grads = params, grads
        self.decay_views = list(decay_views)
        self._tmp = np.empty_like(params)
        self.t = 0
        self._init_state()

    def _init_state(self):
        pass

    def step(self, lr: float | None = None):
        """One update of ``params`` from ``grads`` (at ``lr``, or the optimizer's own rate)."""
        self.t += 1
        self._update(self.lr if lr is None else float(lr))

    def _update(self, lr):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    name = "sgd"

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(lr)
        _check_unit("momentum", momentum)
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _init_state(self):
        self.velocity = np.zeros_like(self.params) if self.momentum else None

    def _update(self, lr):
        p, g, tmp = self.params, self.grads, self._tmp
        if not self.momentum:
            np.multiply(g, F32(lr), out=tmp)
            p -= tmp
            return
        v = self.velocity
        v *= F32(self.momentum)  # v = mu * v + g
        v += g
        if self.nesterov:  # step along g + mu * v (the look-ahead gradient)
            np.multiply(v, F32(self.momentum), out=tmp)
            tmp += g
        else:
            tmp[...] = v
        tmp *= F32(lr)
        p -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction folded into the step size.

    The moments are kept unnormalised, ``m' = b1 m' + g`` and ``v' = b2 v' + g^2`` (m = (1-b1) m',
    v = (1-b2) v'), which saves two passes over the parameters. Every 64 steps, moment values far below
    ``eps`` are flushed to zero, so they never decay into float32 subnormals: x86 arithmetic on
    subnormals is far slower and numpy cannot switch on flush-to-zero.
    """

    name = "adam"
    FLUSH_EVERY = 64

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        _check_unit("beta1", beta1)
        _check_unit("beta2", beta2)
        _check_positive("eps", eps)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _init_state(self):
        self.m = np.zeros_like(self.params)
        self.v = np.zeros_like(self.params)
        # Adding then subtracting C rounds away everything below ~C * 2**-24: a flush to zero.
        self._flush_m = F32(self.eps * 2.0**14)    # |m'| < ~eps/1000 cannot move a weight
        self._flush_v = F32(self.eps**2 * 2.0**14)

    def _flush(self):
        """Zero the moments far below eps (their weights no longer move) before they turn subnormal."""
        m, v = self.m, self.v
        m += self._flush_m
        m -= self._flush_m
        v += self._flush_v
        v -= self._flush_v

    def _update(self, lr):
        b1, b2, t = self.beta1, self.beta2, self.t
        p, g, m, v, tmp = self.params, self.grads, self.m, self.v, self._tmp
        m *= F32(b1)
        m += g
        np.square(g, out=tmp)
        v *= F32(b2)
        v += tmp
        # p -= lr * mhat / (sqrt(vhat) + eps) with mhat = (1-b1) m' / (1-b1^t), vhat = (1-b2) v' / (1-b2^t)
        vscale = math.sqrt((1.0 - b2) / (1.0 - b2**t))
        step = lr * (1.0 - b1) / (1.0 - b1**t) / vscale
        np.sqrt(v, out=tmp)
        tmp += F32(self.eps / vscale)
        np.divide(m, tmp, out=tmp)
        tmp *= F32(step)
        p -= tmp
        # Moments of weights whose gradient stays 0 (rarely-inked pixels) decay geometrically and would
        # reach subnormals after ~800 steps; flushing every 64 steps is cheap.
        if t % self.FLUSH_EVERY == 0:
            self._flush()

    @property
    def first_moment(self):
        """The textbook m_t (for inspection and tests): (1 - beta1) * m'."""
        return self.m * F32(1.0 - self.beta1)

    @property
    def second_moment(self):
        """The textbook v_t: (1 - beta2) * v'."""
        return self.v * F32(1.0 - self.beta2)


class AdamW(Adam):
    """Adam with decoupled weight decay: weights shrink by ``lr * weight_decay`` each step."""

    name = "adamw"

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(lr, beta1, beta2, eps)
        if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)

    def _update(self, lr):
        if self.weight_decay:
            shrink = F32(1.0 - lr * self.weight_decay)
            for w in self.decay_views:  # weights only: biases are not decayed
                w *= shrink
        super()._update(lr)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, lr: float, *, momentum: float = 0.9, nesterov: bool = False,
                   weight_decay: float = 0.0) -> Optimizer:
    """Build an optimizer by name (one of ``OPTIMIZERS``) from the config's fields."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    if name == "sgd":
        return SGD(lr, momentum=momentum, nesterov=nesterov)
    if name == "adamw":
        return AdamW(lr, weight_decay=weight_decay)
    return Adam(lr)


# Schedules map (step, total_steps) -> a multiplier of the base learning rate; step counts from 0.
def _constant(step, total):
    return 1.0


def _step(step, total):
    # Divide by 10 at 50% and again at 75% of training (the classic ResNet-style steps).
    frac = step / max(total, 1)
    return 1.0 if frac < 0.5 else 0.1 if frac < 0.75 else 0.01


def _cosine(step, total):
    return 0.5 * (1.0 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def _onecycle(step, total, warm=0.25, start=0.04, end=1e-3):
    # Linear warm-up from start*lr to lr over the first quarter, then cosine down to end*lr.
    frac = step / max(total, 1)
    if frac < warm:
        return start + (1.0 - start) * frac / warm
    rest = min((frac - warm) / (1.0 - warm), 1.0)
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * rest))


SCHEDULES = {"constant": _constant, "step": _step, "cosine": _cosine, "onecycle": _onecycle}


def schedule_fn(name: str):
    """Return the schedule function called ``name`` (one of ``SCHEDULES``)."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {name!r}")
    return SCHEDULES[name]
