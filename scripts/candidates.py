#!/usr/bin/env python
"""Approved candidates on S3: the PR gate keeps the model it approved, the merge fetches those bytes.

Usage: `python scripts/candidates.py --help`; the code is mnistlite/cli/candidates.py.
"""
import sys

from mnistlite.cli.candidates import main

if __name__ == "__main__":
    sys.exit(main())
