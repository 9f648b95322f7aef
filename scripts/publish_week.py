#!/usr/bin/env python
"""Publish a week of digits to S3: an IDX dataset's slice as NNNNN_label_D.png files (demos, tests, drills).

Usage: `python scripts/publish_week.py --help`; the code is mnistlite/cli/publish_week.py
(installed as `mnistlite-publish-week`).
"""
import sys

from mnistlite.cli.publish_week import main

if __name__ == "__main__":
    sys.exit(main())
