#!/usr/bin/env python
"""Train an MLP on MNIST-format data and save it with its metrics.

Usage: `python scripts/train.py --help`; the code is mnistlite/cli/train.py
(installed as `mnistlite-train`).
"""
import os
import sys

# Before numpy loads OpenBLAS: its idle threads sleep at once instead of spinning 2**28 cycles, so the
# batch producer (mnistlite/nn/producer.py) gets the second core while the fit runs its one-thread parts.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from mnistlite.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
