#!/usr/bin/env python
"""The whole pipeline on one machine (`make pipeline`): every stage, in order, against a real S3 server.

Usage: `python scripts/pipeline.py --help`; the code is mnistlite/cli/pipeline.py
(installed as `mnistlite-pipeline`).
"""
import sys

from mnistlite.cli.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
