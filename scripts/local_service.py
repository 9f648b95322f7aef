#!/usr/bin/env python
"""Serve a model file as production does and check it: the repo's gunicorn config on a free 127.0.0.1 port.

Usage: `python scripts/local_service.py --help`; the code is mnistlite/cli/local_service.py
(installed as `mnistlite-local-service`).
"""
import sys

from mnistlite.cli.local_service import main

if __name__ == "__main__":
    sys.exit(main())
