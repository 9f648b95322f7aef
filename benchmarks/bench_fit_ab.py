"""Alternating A/B fits of one recipe across source trees (this checkout, another worktree or commit).

Usage:
  python benchmarks/bench_fit_ab.py --tree /work/base --tree . [--recipe default] [--epochs N]
                                    [--rounds 3] [--threads 1] [--out ab.json]

Each round fits the recipe once per tree, in turn, each fit in a fresh process that imports the tree's
own ``mnistlite`` (PYTHONPATH), so the trees see the same machine load. A fit is ``fit_recipe`` on MNIST's
training set; its CPU seconds (the process's, every BLAS thread, and its batch producer's where the tree has
one) are those of what ``train_seconds`` covers (``recipe.train`` and, where the tree has it,
``recipe.calibrate``), its wall seconds ``train_seconds``.
Prints each fit, then per tree the median CPU and wall seconds and the test accuracy, and each tree's
median as a multiple of the first tree's. A shared machine's load drifts: read the medians, name the load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import dataclasses, json, sys, time
import numpy as np
import mnistlite as ml
recipe, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = ml.RECIPES[recipe]
if epochs:
    config = dataclasses.replace(config, epochs=epochs)
(x, y), (xt, yt) = ml.load_mnist(as_float=False)
from mnistlite import recipe as r
# the fit's own CPU: this process's and its children's (a tree with a batch producer process forks one;
# resource's RUSAGE_CHILDREN holds it once it is reaped, at the end of the fit)
import resource
def cpu_now():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ru.ru_utime + ru.ru_stime
fit_cpu = [0.0]
def timed(fn):
    def run(*a, **k):
        c = cpu_now()
        try:
            return fn(*a, **k)
        finally:
            fit_cpu[0] += cpu_now() - c
    return run
r.train = timed(r.train)          # what train_seconds covers: the fit and, where it exists, calibration
if hasattr(r, "calibrate"):
    r.calibrate = timed(r.calibrate)
c0, w0 = cpu_now(), time.perf_counter()
model, history, report = ml.fit_recipe(config, x, y, threads=threads or None)
cpu, wall = cpu_now() - c0, time.perf_counter() - w0
acc = float((model.predict(xt) == yt).mean())
if len(sys.argv) > 4:
    ml.save(model, sys.argv[4])
print(json.dumps({"cpu_s": fit_cpu[0], "fit_recipe_cpu_s": cpu, "wall_s": wall,
                  "train_seconds": report["train_seconds"], "test_accuracy": acc, "module": ml.__file__,
                  "load": open("/proc/loadavg").read().split()[0]}))
"""


def fit_once(tree: Path, recipe: str, epochs: int, threads: int, keep: Path | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [sys.executable, "-c", CHILD, recipe, str(epochs), str(threads)]
    if keep:
        args.append(str(keep))
    out = subprocess.run(args, cwd=tree, env=env, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(result["module"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"{tree}: imported mnistlite from {result['module']}, not from the tree")
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", required=True, help="a source tree holding mnistlite/")
    ap.add_argument("--recipe", default="default")
    ap.add_argument("--epochs", type=int, default=0, help="epochs (0: the recipe's own)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads, pinned (0: the thread policy)")
    ap.add_argument("--keep", help="folder to save each tree's last model in (tree index.npz)")
    ap.add_argument("--out", help="write every fit as JSON here")
    args = ap.parse_args(argv)
    trees = [Path(t).resolve() for t in args.tree]
    fits = {str(t): [] for t in trees}
    for r in range(args.rounds):
        for i, tree in enumerate(trees):
            keep = Path(args.keep).resolve() / f"{i}.npz" if args.keep else None
            f = fit_once(tree, args.recipe, args.epochs, args.threads, keep)
            fits[str(tree)].append(f)
            print(f"round {r + 1} tree {i} ({tree}): CPU {f['cpu_s']:.2f} s, "
                  f"wall {f['train_seconds']:.2f} s, "
                  f"acc {f['test_accuracy']:.4f}, load {f['load']}", flush=True)
    base = None
    print(f"\n{args.recipe}, epochs {args.epochs or 'as recipe'}, threads {args.threads or 'policy'}, "
          f"{args.rounds} rounds\n")
    print("| tree | median CPU s | median wall s | x first (CPU) | x first (wall) | test acc |")
    print("|---|---|---|---|---|---|")
    for tree in trees:
        fs = fits[str(tree)]
        cpu = statistics.median(f["cpu_s"] for f in fs)
        wall = statistics.median(f["train_seconds"] for f in fs)
        base = base or (cpu, wall)
        print(f"| {tree} | {cpu:.2f} | {wall:.2f} | {cpu / base[0]:.3f} | {wall / base[1]:.3f} | "
              f"{fs[-1]['test_accuracy']:.4f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(fits, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
