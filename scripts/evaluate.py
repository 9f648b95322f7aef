#!/usr/bin/env python
"""Evaluate one model, or gate a candidate against production on a fixed test set.

Usage: `python scripts/evaluate.py --help`; the code is mnistlite/cli/evaluate.py
(installed as `mnistlite-evaluate`).
"""
import sys

from mnistlite.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
