"""Prototype: one epoch's CPU seconds of the default recipe's steps at 1 BLAS thread, three ways.

Usage: HALVES_TIMING=1 python benchmarks/bench_halves_cpu.py

Today's full batch; the two halves one after the other in this process; the halves in two forked worker
processes one after the other (each worker prints its own CPU: "g" its half's batch hook, forward and
backward, "u" its share of the gradient sum and the optimizer step). A random stand-in for the non-digit
pool; the same shuffled batches each way.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import mnistlite as ml  # noqa: E402
from mnistlite import recipe  # noqa: E402
from mnistlite.images.augment import training_hook  # noqa: E402
from mnistlite.images.nondigits import outlier_hook  # noqa: E402
from mnistlite.nn.halves import Halves, ProcessHalves2  # noqa: E402
from mnistlite.nn.optim import make_optimizer  # noqa: E402


def fresh(pool):
    m = recipe.build(recipe.DEFAULT)
    m.loss.eps = 0.1
    hook = outlier_hook(0.2, pool, training_hook(0.5, 1, m.rng))
    opt = make_optimizer("adam", 2e-3)
    opt.bind(m.flat_params, m.flat_grads)
    return m, hook, opt


def main():
    (x, y), _ = ml.load_mnist(as_float=True)
    x, y = x[:54000], y[:54000]
    rng = np.random.default_rng(0)
    pool = rng.random((2400, 784), dtype=np.float32) * (rng.random((2400, 784)) < 0.2)
    order = rng.permutation(len(x))
    batches = [order[s:s + 256] for s in range(0, len(x), 256)]
    with threadpool_limits(1, "blas"):
        for _ in range(2):
            m, hook, opt = fresh(pool)
            c0 = time.process_time()
            for idx in batches:
                xb, yb = hook(x.take(idx, axis=0), y.take(idx), m.rng)
                m.loss_and_grads(xb, yb)
                opt.step(1e-3)
            print("today, 1 thread: epoch CPU", round(time.process_time() - c0, 3))
            m, hook, opt = fresh(pool)
            halves = Halves(m, 0, 0.1, 1)
            c0 = time.process_time()
            for idx in batches:
                halves.loss_and_grads(x.take(idx, axis=0), y.take(idx), hook)
                opt.step(1e-3)
            print("halves in-process, one after the other: epoch CPU", round(time.process_time() - c0, 3))
            m, hook, opt = fresh(pool)
            procs = ProcessHalves2(m, x, y, hook, 0, opt, 0.1, parallel=False)
            c0, w0 = time.process_time(), time.perf_counter()
            for idx in batches:
                procs.step(idx, 1e-3)
            print("halves in 2 processes, one after another: parent CPU", round(time.process_time() - c0, 3),
                  "wall", round(time.perf_counter() - w0, 3), flush=True)
            procs.close()
            print("load", open("/proc/loadavg").read().split()[0])


if __name__ == "__main__":
    main()
