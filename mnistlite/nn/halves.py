"""Data-parallel halves of a mini-batch: the same bits on one core or two.

Each batch is cut into two fixed halves (its first and second half of rows). Each half has its own
layer caches, gradient buffer and generator (for the batch hook and dropout), and runs forward and
backward with one BLAS thread; the halves' gradients are summed in a fixed order and the optimizer takes
one step. With two workers the halves run at once on two Python threads (numpy and OpenBLAS release the
GIL in their loops); with one, the same code runs them one after the other. Nothing a half computes
depends on which thread ran it, so the weights are bit-identical for any number of workers.
"""
from __future__ import annotations

import threading

import numpy as np

from .layers import Activation, Dense, Dropout
from .losses import SoftmaxCrossEntropy

F32 = np.float32
PARTS = 2


def half_generators(seed) -> list[np.random.Generator]:
    """One generator per half, from ``seed`` (an int): the halves' own streams for hooks and dropout."""
    return [np.random.default_rng([int(seed), 3, i]) for i in range(PARTS)]


class _Half:
    """One half's view of the model: the model's weights (shared, read only during a step), its own
    layer caches and gradient buffer, loss and generator."""

    def __init__(self, model, grads: np.ndarray, rng: np.random.Generator, label_smoothing: float):
        self.rng, self.grads = rng, grads
        self.loss = SoftmaxCrossEntropy(label_smoothing)
        self.layers, at = [], 0
        for layer in model.layers:
            if isinstance(layer, Dense):
                twin = Dense(1, 1, init="zeros")
                twin.W, twin.b, twin.needs_input_grad = layer.W, layer.b, layer.needs_input_grad
                twin.dW = grads[at:at + layer.W.size].reshape(layer.W.shape)
                at += layer.W.size
                twin.db = grads[at:at + layer.b.size]
                at += layer.b.size
            elif isinstance(layer, Activation):
                twin = Activation(layer.name)
            elif isinstance(layer, Dropout):
                twin = Dropout(layer.p, rng=rng)
            else:  # pragma: no cover - the MLP builds only the three kinds above
                raise TypeError(f"no half twin for {type(layer).__name__}")
            self.layers.append(twin)
        assert at == grads.size
        self.result = None

    def run(self, xb, yb, hook):
        """Hook, forward, loss, backward on this half: fills ``grads`` with the gradient of the half's
        summed loss divided by twice its rows (a half's share of the batch mean, when halves are equal)."""
        if hook is not None:
            xb, yb = hook(xb, yb, self.rng)
        h = xb
        for layer in self.layers:
            h = layer.forward(h, True)
        loss = self.loss.forward(h, yb)
        grad = self.loss.backward()
        grad *= F32(0.5)   # exact: the mean over this half becomes its share of the mean over both
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        correct = int(np.count_nonzero(h.argmax(axis=1) == yb))
        labelled = len(yb) if yb[-1] >= 0 else int(np.count_nonzero(yb >= 0))
        self.result = (loss, len(yb), correct, labelled)


class _Worker(threading.Thread):
    """A thread that runs one half per request; ``submit`` hands it work, ``wait`` collects it."""

    def __init__(self):
        super().__init__(daemon=True, name="mnistlite-half")
        self._go, self._done = threading.Semaphore(0), threading.Semaphore(0)
        self._job, self._error = None, None
        self.start()

    def run(self):
        while True:
            self._go.acquire()
            job = self._job
            if job is None:
                return
            try:
                job()
            except BaseException as e:  # handed to the caller's thread by wait()
                self._error = e
            self._done.release()

    def submit(self, job):
        self._job = job
        self._go.release()

    def wait(self):
        self._done.acquire()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def stop(self):
        self._job = None
        self._go.release()
        self.join()


class Halves:
    """Runs a model's training steps as two halves; ``workers`` (1 or 2) may change between epochs."""

    def __init__(self, model, seed, label_smoothing: float = 0.0, workers: int = 2):
        rngs = half_generators(seed)
        # half 0 writes straight into the model's gradient vector; half 1 into its own, added after
        self.halves = [_Half(model, model.flat_grads, rngs[0], label_smoothing),
                       _Half(model, np.zeros_like(model.flat_grads), rngs[1], label_smoothing)]
        self.model, self._worker = model, None
        self.workers = workers

    @property
    def workers(self) -> int:
        return 1 if self._worker is None else 2

    @workers.setter
    def workers(self, n: int):
        if n >= 2 and self._worker is None:
            self._worker = _Worker()
        elif n < 2 and self._worker is not None:
            self._worker.stop()
            self._worker = None

    def close(self):
        self.workers = 1

    def loss_and_grads(self, xb, yb, hook):
        """Fill the model's ``flat_grads`` with the batch's gradient; returns (loss, rows, correct,
        labelled) summed over the halves (loss as the batch mean)."""
        n = len(xb)
        cut = (n + 1) // 2
        a, b = self.halves
        if self._worker is not None and n > 1:
            self._worker.submit(lambda: b.run(xb[cut:], yb[cut:], hook))
            a.run(xb[:cut], yb[:cut], hook)
            self._worker.wait()
        else:
            a.run(xb[:cut], yb[:cut], hook)
            if n > 1:
                b.run(xb[cut:], yb[cut:], hook)
        if n == 1:
            a.grads *= F32(2)
            return a.result
        (la, na, ca, fa), (lb, nb, cb, fb) = a.result, b.result
        if na != nb:   # unequal halves (an odd batch, or a hook that adds rows unevenly): reweigh
            a.grads *= F32(2 * na / (na + nb))
            b.grads *= F32(2 * nb / (na + nb))
        a.grads += b.grads
        model = self.model
        loss = (la * na + lb * nb) / (na + nb)
        if model.weight_decay:
            lam = F32(model.weight_decay)
            for d in model.dense:
                loss += 0.5 * model.weight_decay * float(np.vdot(d.W, d.W))
                d.dW += lam * d.W
        return loss, na + nb, ca + cb, fa + fb


# ---- prototype: the halves in two forked processes (no GIL between them) --------------------------
import mmap  # noqa: E402
import multiprocessing as mp  # noqa: E402


def _shared(n: int) -> np.ndarray:
    return np.frombuffer(mmap.mmap(-1, max(n, 1) * 4), dtype=F32, count=n)


def share_params(model):
    """Move the model's flat parameters and gradients into memory shared with forked children."""
    params, grads = _shared(model.flat_params.size), _shared(model.flat_params.size)
    params[...] = model.flat_params
    model.flat_params, model.flat_grads = params, grads
    at = 0
    for d in model.dense:
        for name in ("W", "b"):
            arr = getattr(d, name)
            setattr(d, name, params[at:at + arr.size].reshape(arr.shape))
            setattr(d, "d" + name, grads[at:at + arr.size].reshape(arr.shape))
            at += arr.size


def _serve(conn, half, x, y, hook):
    while True:
        idx = conn.recv()
        if idx is None:
            return
        try:
            half.run(x.take(idx, axis=0), y.take(idx), hook)
            conn.send(half.result)
        except BaseException as e:
            conn.send(e)


class ProcessHalves:
    """The halves in two forked worker processes sharing the model's weights; ``parallel`` False runs
    them one after the other (same bits)."""

    def __init__(self, model, x, y, hook, seed, label_smoothing: float = 0.0, parallel: bool = True):
        share_params(model)
        rngs = half_generators(seed)
        self.model, self.parallel = model, parallel
        self.gb = _shared(model.flat_grads.size)
        halves = [_Half(model, model.flat_grads, rngs[0], label_smoothing),
                  _Half(model, self.gb, rngs[1], label_smoothing)]
        ctx = mp.get_context("fork")
        self.conns, self.procs = [], []
        for half in halves:
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(theirs, half, x, y, hook), daemon=True)
            p.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(p)

    def close(self):
        for c, p in zip(self.conns, self.procs, strict=True):
            c.send(None)
            p.join()

    def _get(self, c):
        r = c.recv()
        if isinstance(r, BaseException):
            raise r
        return r

    def loss_and_grads(self, idx):
        cut = (len(idx) + 1) // 2
        a, b = self.conns
        if self.parallel:
            a.send(idx[:cut])
            b.send(idx[cut:])
            ra, rb = self._get(a), self._get(b)
        else:
            a.send(idx[:cut])
            ra = self._get(a)
            b.send(idx[cut:])
            rb = self._get(b)
        (la, na, ca, fa), (lb, nb, cb, fb) = ra, rb
        ga = self.model.flat_grads
        if na != nb:
            ga *= F32(2 * na / (na + nb))
            self.gb *= F32(2 * nb / (na + nb))
        ga += self.gb
        return (la * na + lb * nb) / (na + nb), na + nb, ca + cb, fa + fb


def _serve2(conn, half, x, y, hook, opt, lo, hi, ga, gb):
    """Worker loop: ("g", idx) runs the half; ("u", lr, wa, wb) sums its range of the gradients and steps
    its range of the parameters."""
    import os
    import time
    tg = tu = 0.0
    while True:
        msg = conn.recv()
        if msg is None:
            if os.environ.get("HALVES_TIMING"):
                print(f"kid {lo}: g {tg:.2f} s u {tu:.2f} s cpu", flush=True)
            return
        c0 = time.process_time()
        try:
            if msg[0] == "g":
                half.run(x.take(msg[1], axis=0), y.take(msg[1]), hook)
                tg += time.process_time() - c0
                conn.send(half.result)
            else:
                _, lr, wa, wb = msg
                a, b = ga[lo:hi], gb[lo:hi]
                if wa != 1.0:
                    a *= F32(wa)
                    b *= F32(wb)
                a += b
                opt.step(lr)
                tu += time.process_time() - c0
                conn.send(None)
        except BaseException as e:
            conn.send(e)


class ProcessHalves2(ProcessHalves):
    """ProcessHalves with the gradient sum and the optimizer step split by parameter range too."""

    def __init__(self, model, x, y, hook, seed, optimizer, label_smoothing: float = 0.0,
                 parallel: bool = True):
        import copy
        share_params(model)
        rngs = half_generators(seed)
        self.model, self.parallel = model, parallel
        self.gb = _shared(model.flat_grads.size)
        ga = model.flat_grads
        halves = [_Half(model, ga, rngs[0], label_smoothing), _Half(model, self.gb, rngs[1], label_smoothing)]
        n = ga.size
        cuts = [0, n // 2, n]
        ctx = mp.get_context("fork")
        self.conns, self.procs = [], []
        for i, half in enumerate(halves):
            lo, hi = cuts[i], cuts[i + 1]
            opt = copy.deepcopy(optimizer)
            opt.bind(model.flat_params[lo:hi], ga[lo:hi])   # decay views: left out in the prototype
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_serve2, args=(theirs, half, x, y, hook, opt, lo, hi, ga, self.gb),
                            daemon=True)
            p.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(p)

    def _round(self, msgs):
        if self.parallel:
            for c, m in zip(self.conns, msgs, strict=True):
                c.send(m)
            return [self._get(c) for c in self.conns]
        out = []
        for c, m in zip(self.conns, msgs, strict=True):
            c.send(m)
            out.append(self._get(c))
        return out

    def step(self, idx, lr):
        cut = (len(idx) + 1) // 2
        ra, rb = self._round([("g", idx[:cut]), ("g", idx[cut:])])
        (la, na, ca, fa), (lb, nb, cb, fb) = ra, rb
        wa, wb = (1.0, 1.0) if na == nb else (2 * na / (na + nb), 2 * nb / (na + nb))
        self._round([("u", lr, wa, wb)] * 2)
        return (la * na + lb * nb) / (na + nb), na + nb, ca + cb, fa + fb
