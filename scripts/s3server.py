#!/usr/bin/env python
"""A real S3 server on 127.0.0.1 for tests, demos and `make pipeline`: SeaweedFS's `weed mini`.

Usage: `python scripts/s3server.py --help`; the code is mnistlite/cli/s3server.py
(installed as `mnistlite-s3server`).
"""
import sys

from mnistlite.cli.s3server import main

if __name__ == "__main__":
    sys.exit(main())
