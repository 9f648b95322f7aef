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
# 2**20 cycles (~0.4 ms at 2.6 GHz) still spans every gap between products of a reference-recipe step
# (its optimizer and loop take ~0.2-0.3 ms), and lets it sleep through most of a default-recipe step's
# optimizer. The bits do not change.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

from mnistlite.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
