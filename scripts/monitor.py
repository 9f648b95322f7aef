#!/usr/bin/env python
"""The weekly field report: score production (and the models before it) on a new labelled week.

Usage: `python scripts/monitor.py --help`; the code is mnistlite/cli/monitor.py
(installed as `mnistlite-monitor`).
"""
import sys

from mnistlite.cli.monitor import main

if __name__ == "__main__":
    sys.exit(main())
