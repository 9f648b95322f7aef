#!/usr/bin/env python
"""Train an MLP on MNIST-format data and save it with its metrics.

Usage: `python scripts/train.py --help`; the code is mnistlite/cli/train.py
(installed as `mnistlite-train`).
"""
import sys

from mnistlite.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
