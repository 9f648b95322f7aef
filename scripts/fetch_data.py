#!/usr/bin/env python
"""Fetch weekly digit folders from S3 into a local folder (parallel, resumable, ETag-skipping).

Usage: `python scripts/fetch_data.py --help`; the code is mnistlite/cli/fetch_data.py
(installed as `mnistlite-fetch-data`).
"""
import sys

from mnistlite.cli.fetch_data import main

if __name__ == "__main__":
    sys.exit(main())
