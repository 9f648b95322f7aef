"""Measure the corruption detector: false positives on real MNIST, detection per noise kind, speed.

usage: benchmarks/bench_validate.py [--data IDXDIR] [--per-kind 10000] [--seed 0]

Prints the false-positive rate on all 70,000 MNIST images (train and test apart), the detection
rate of each noise kind in mnistlite.quality.noise (and after preprocess_image, as the service sees
uploads), the time to validate a folder of 10,000 PNGs (decode + checks), and one image's latency.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

import mnistlite as ml
from mnistlite.data.images import encode_png, write_folder
from mnistlite.quality import noise
from mnistlite.quality.detector import corruption_reasons, is_corrupt
from mnistlite.quality.validate import validate_folder


def flagged(x) -> int:
    return sum(r is not None for r in corruption_reasons(x))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="MNIST IDX folder (default: $MNISTLITE_DATA_DIR / load_mnist)")
    ap.add_argument("--per-kind", type=int, default=10000, help="noise images per kind (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    (xtr, ytr), (xte, _) = ml.load_mnist(args.data, as_float=False)
    ftr, fte = flagged(xtr), flagged(xte)
    print(f"false positives: train {ftr}/{len(xtr)} ({ftr / len(xtr):.4%}), test {fte}/{len(xte)} "
          f"({fte / len(xte):.4%}), all {(ftr + fte) / (len(xtr) + len(xte)):.4%}  (target <= 0.1%)")
    for kind in noise.ALL_KINDS:
        x = noise.make(kind, args.per_kind, seed=args.seed, digits=xte)
        missed = len(x) - flagged(x)
        print(f"detection {kind:12s} {1 - missed / len(x):.4%}  ({missed} missed of {len(x)})  "
              f"(target >= 99.9%)")
    for sigma in (20, 30, 40, 50, 60):
        x = noise.noisy_digits(xte, seed=args.seed, sigma=(sigma, sigma))
        print(f"  noisy digits, sigma {sigma:3d}: detection {flagged(x) / len(x):.2%}")

    from mnistlite.images.preprocess import preprocess_image

    n = min(2000, args.per_kind)
    up = np.stack([preprocess_image(encode_png(im)) for im in xte[:n]])
    print(f"after preprocess_image: real digits flagged {flagged(up)}/{n}")
    for kind in noise.ALL_KINDS:
        x = noise.make(kind, n, seed=args.seed + 1, digits=xte)
        up = np.stack([preprocess_image(encode_png(im)) for im in x])
        print(f"after preprocess_image: {kind:12s} detection {flagged(up) / n:.2%}")

    t = time.perf_counter()
    corruption_reasons(xte)
    print(f"detector only, 10,000 images: {time.perf_counter() - t:.3f} s")
    one = []
    for im in xte[:2000]:
        t = time.perf_counter()
        is_corrupt(im)
        one.append(time.perf_counter() - t)
    print(f"is_corrupt one image: median {np.median(one) * 1e6:.0f} us, "
          f"p99 {np.quantile(one, 0.99) * 1e6:.0f} us")
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(tmp, xtr[:10000], ytr[:10000])
        t = time.perf_counter()
        rep = validate_folder(tmp, quarantine=False)
        dt = time.perf_counter() - t
        print(f"validate_folder, 10,000 PNGs (decode + checks + duplicates): {dt:.2f} s "
              f"({rep.good} good, {len(rep.bad)} bad)  (target < 2 s on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
