"""Validate a folder of NNNNN_label_D.png digits; quarantine the bad ones; apply the policy.

usage: scripts/validate_data.py DIR [--report FILE] [--max-bad-fraction F] [--max-class-distance D]
                                [--min-count N] [--no-quarantine]

Writes a JSON report (default DIR/validation.json; ``bad``: [{file, reason}]), prints a short summary,
moves bad files to DIR/quarantine/ (never deletes). Exit 0: passed; 1: failed the policy; 2: usage error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnistlite.quality.validate import validate_folder, write_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="folder of NNNNN_label_D.png files")
    ap.add_argument("--report", type=Path, help="JSON report path (default DIR/validation.json)")
    ap.add_argument("--max-bad-fraction", type=float, default=0.01,
                    help="policy: allowed share of bad images")
    ap.add_argument("--max-class-distance", type=float, default=None,
                    help="policy: max total-variation distance of class shares from MNIST's "
                         "(default: report only)")
    ap.add_argument("--min-count", type=int, default=1, help="policy: minimum number of images")
    ap.add_argument("--no-quarantine", action="store_true", help="report bad files but leave them in place")
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        ap.error(f"{args.dir}: not a folder")
    try:
        report = validate_folder(args.dir, max_bad_fraction=args.max_bad_fraction,
                                 max_class_distance=args.max_class_distance, min_count=args.min_count,
                                 quarantine=not args.no_quarantine)
    except ValueError as e:
        ap.error(str(e))
    path = write_report(report, args.report or args.dir / "validation.json")
    print(report.summary())
    print(f"  report: {path}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
