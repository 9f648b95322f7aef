"""Where a fit's time goes: one ``fit_recipe`` run with a CPU and wall timer around each phase.

Usage:
  python benchmarks/bench_fit_phases.py [--recipe default] [--epochs 4] [--threads 1] [--out phases.json]

Wraps the functions a fit calls (the one-off set-up: validation split, clutter bank, non-digit pool,
calibration; per step: the augmentation, the shift, the outlier rows, the dense layers' products, the
activations, the loss, the optimizer; per epoch: the validation pass) and prints a table of each one's own
CPU seconds (all threads of the process, ``time.process_time``) and wall seconds, nested calls subtracted.
"other" is the rest of the fit: batching, the Python loop. The wrappers cost about a microsecond a call.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import mnistlite as ml  # noqa: E402
from mnistlite import recipe  # noqa: E402
from mnistlite.images import augment, nondigits  # noqa: E402
from mnistlite.nn import layers, losses, model, optim  # noqa: E402


class Phases:
    """Exclusive CPU and wall seconds per named phase, with nesting: a phase's time excludes its callees'."""

    def __init__(self):
        self.cpu, self.wall, self.calls, self._stack = {}, {}, {}, []

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            self._stack.append([0.0, 0.0])
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                c, w = time.process_time() - c0, time.perf_counter() - w0
                inner_c, inner_w = self._stack.pop()
                self.cpu[name] = self.cpu.get(name, 0.0) + c - inner_c
                self.wall[name] = self.wall.get(name, 0.0) + w - inner_w
                self.calls[name] = self.calls.get(name, 0) + 1
                if self._stack:
                    self._stack[-1][0] += c
                    self._stack[-1][1] += w
        return timed

    def patch(self, owner, attr, name):
        setattr(owner, attr, self.wrap(name, getattr(owner, attr)))


def instrument(p: Phases):
    p.patch(recipe, "split_validation", "one-off: validation split")
    p.patch(augment, "clutter_bank", "one-off: clutter bank")
    p.patch(recipe, "outlier_pool", "one-off: non-digit pool")
    p.patch(recipe, "calibrate", "one-off: calibration")
    p.patch(augment.Augment, "__call__", "step: augmentation (distort)")
    p.patch(augment, "random_shift", "step: shift")
    p.patch(nondigits, "random_shift", "step: outlier rows")
    inner_hook = recipe.outlier_hook
    recipe.outlier_hook = lambda *a, **k: p.wrap("step: outlier rows", inner_hook(*a, **k))
    p.patch(layers.Dense, "forward", "step: dense forward")
    p.patch(layers.Dense, "backward", "step: dense backward")
    p.patch(layers.Activation, "forward", "step: activation")
    p.patch(layers.Activation, "backward", "step: activation")
    p.patch(losses.SoftmaxCrossEntropy, "forward", "step: loss")
    p.patch(losses.SoftmaxCrossEntropy, "backward", "step: loss")
    p.patch(optim.Optimizer, "step", "step: optimizer")
    p.patch(model.MLP, "evaluate", "epoch: validation pass")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="default", choices=sorted(recipe.RECIPES))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (pinned; default 1)")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    config = dataclasses.replace(recipe.RECIPES[args.recipe], epochs=args.epochs)
    (x, y), _ = ml.load_mnist(as_float=False)
    p = Phases()
    instrument(p)
    fit = p.wrap("other", recipe.fit_recipe)   # what the phases above leave: batching, the loop
    c0, w0 = time.process_time(), time.perf_counter()
    fit(config, x, y, threads=args.threads, producer=False)   # every phase in this process
    total_cpu, total_wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"{args.recipe} recipe, {args.epochs} epochs, {args.threads} BLAS thread(s)\n")
    print("| phase | CPU s | share | wall s | calls |")
    print("|---|---|---|---|---|")
    for name in sorted(p.cpu, key=lambda k: -p.cpu[k]):
        print(f"| {name} | {p.cpu[name]:.2f} | {p.cpu[name] / total_cpu:.1%} | {p.wall[name]:.2f} | "
              f"{p.calls.get(name, '')} |")
    print(f"| **fit_recipe** | **{total_cpu:.2f}** | | **{total_wall:.2f}** | |")
    if args.out:
        Path(args.out).write_text(json.dumps({"cpu": p.cpu, "wall": p.wall, "calls": p.calls,
                                              "total_cpu": total_cpu, "total_wall": total_wall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
