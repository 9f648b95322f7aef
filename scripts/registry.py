#!/usr/bin/env python
"""The production model registry on S3: promote, show, fetch, rollback.

Usage: `python scripts/registry.py --help`; the code is mnistlite/cli/registry.py
(installed as `mnistlite-registry`).
"""
import sys

from mnistlite.cli.registry import main

if __name__ == "__main__":
    sys.exit(main())
