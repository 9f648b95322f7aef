#!/usr/bin/env python
"""Train an MLP on MNIST-format data and save it with its metrics.

Usage: `python scripts/train.py --help`; the code is mnistlite/cli/train.py
(installed as `mnistlite-train`).
"""
import os
import sys

# OpenBLAS reads this when numpy loads it, so it is set before the import (a value already set wins).
# An idle BLAS thread spins for 2**28 cycles (~0.1 s) by default before it sleeps, holding a core through
# the single-threaded part of every step, which is where the next batch is made (nn/prefetch.py).
# 2**18 cycles (~0.1 ms) still spans the short gaps between one step's products. The bits do not change.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "18")

from mnistlite.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
