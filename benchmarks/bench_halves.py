"""Prototype A/B: the default fit on today's path against data-parallel halves in two forked processes.

Usage:
  python benchmarks/bench_halves.py [--epochs 4] [--rounds 3] [--arms today2,halves,today1]

Arms, each fit in a fresh process, alternating per round: ``today2`` (``fit_recipe`` pinned to 2 BLAS
threads), ``today1`` (pinned to 1), ``policy`` (the thread policy, unpinned), ``halves`` (every batch cut
into two halves, each run with 1 BLAS thread in its own forked process, which also sums and steps its
half of the parameter vector: ``nn/halves.py``), ``halves1`` (the same, the halves one after the other).
Prints per fit the wall and CPU seconds (the forked workers' included), the median epoch's seconds, the
test accuracy, a hash of the weights (equal for both halves arms) and the load average.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import dataclasses, hashlib, json, os, resource, statistics, sys, time
import numpy as np
import mnistlite as ml
from mnistlite.nn import model as M
from mnistlite.nn.halves import ProcessHalves2
arm, epochs = sys.argv[1], int(sys.argv[2])
if arm.startswith("halves"):
    parallel, fit0 = arm == "halves", M.MLP.fit
    def fit(self, x, y, **kw):
        hook = kw.pop("batch_hook")
        x, y = self._training_arrays(x, y)
        self._hv = None
        def epoch(batches, _hook, opt, lrs, averager=None):
            if self._hv is None:
                self._hv = ProcessHalves2(self, x, y, hook, self._seed, opt, self.loss.eps, parallel)
            loss_sum = correct = seen = labelled = 0
            for idx in batches:
                lr = next(lrs)
                loss, n, c, f = self._hv.step(idx, lr)
                loss_sum += loss * n; correct += c; seen += n; labelled += f
            return loss_sum / seen, correct / max(labelled, 1), lr
        self._train_epoch = epoch
        def indices(x_, y_, bs, rng):
            order = rng.permutation(len(x_))
            for s in range(0, len(x_), bs):
                yield order[s:s + bs]
        mb, M.minibatches = M.minibatches, indices
        try:
            return fit0(self, x, y, batch_hook=None, **kw)
        finally:
            M.minibatches = mb
            self._hv.close()
            self._flatten()
    M.MLP.fit = fit
    threads = 1
else:
    threads = {"today2": 2, "today1": 1, "policy": None}[arm]
config = dataclasses.replace(ml.RECIPES["default"], epochs=epochs)
(x, y), (xt, yt) = ml.load_mnist(as_float=False)
t0, c0 = time.perf_counter(), time.process_time()
model, history, report = ml.fit_recipe(config, x, y, threads=threads)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"arm": arm, "wall": round(wall, 2), "cpu": round(cpu + kids.ru_utime + kids.ru_stime, 2),
                  "epoch_s": round(statistics.median(history["seconds"]), 3),
                  "blas": report["blas_threads"], "acc": float((model.predict(xt) == yt).mean()),
                  "weights": hashlib.sha256(model.flat_params.tobytes()).hexdigest()[:12],
                  "load": open("/proc/loadavg").read().split()[0]}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arms", default="today2,halves,today1")
    args = ap.parse_args(argv)
    results = {}
    for _ in range(args.rounds):
        for arm in args.arms.split(","):
            out = subprocess.run([sys.executable, "-c", CHILD, arm, str(args.epochs)], cwd=HERE.parent,
                                 check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.setdefault(arm, []).append(r)
            print(json.dumps(r), flush=True)
    for arm, rs in results.items():
        walls, cpus = sorted(r["wall"] for r in rs), sorted(r["cpu"] for r in rs)
        print(f"{arm:8s} wall {walls} CPU {cpus} epoch {sorted(r['epoch_s'] for r in rs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
