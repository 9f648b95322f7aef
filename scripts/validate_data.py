#!/usr/bin/env python
"""Validate a folder of NNNNN_label_D.png digits; quarantine the bad ones; apply the policy.

Usage: `python scripts/validate_data.py --help`; the code is mnistlite/cli/validate_data.py
(installed as `mnistlite-validate-data`).
"""
import sys

from mnistlite.cli.validate_data import main

if __name__ == "__main__":
    sys.exit(main())
