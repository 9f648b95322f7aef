"""Publish a week of digits to S3: an IDX dataset's slice as NNNNN_label_D.png files (demos, tests, drills).

usage: scripts/publish_week.py --data IDXDIR --start I --count N s3://BUCKET/PREFIX/week-K
                               [--split train|test] [--tarball] [--corrupt] [--seed S]
                               [--writers mnist|slanted]
                               [--endpoint-url URL] [--jobs 8]

--data is a folder with the four MNIST IDX .gz files; sample ids are the indices in the split, so weeks
published from different slices never collide. --tarball uploads one images.tar.gz instead of N objects.
--corrupt replaces every image with seeded noise (the kinds in mnistlite.quality.noise), like the incident.
--writers slanted re-renders the digits with a strong slant: valid digits from a shifted population of
writers, which a model trained on MNIST reads clearly worse (a drill for scripts/monitor.py).
Exit 0 on success, 1 on an S3 or data error, 2 on usage errors.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnistlite.data.idx import IDXError
from mnistlite.data.s3 import S3Error, upload_week
from mnistlite.quality.weekly import build_week
from mnistlite.quality.writers import WRITERS

from .common import fail, s3_message


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("uri", help="target week: s3://BUCKET/PREFIX/week-K")
    ap.add_argument("--data", type=Path, required=True, help="IDX folder (MNIST file names)")
    ap.add_argument("--start", type=int, required=True, help="first image index in the split")
    ap.add_argument("--count", type=int, required=True, help="number of images")
    ap.add_argument("--split", choices=("train", "test"), default="train",
                    help="which IDX split (default train)")
    ap.add_argument("--tarball", action="store_true",
                    help="upload one images.tar.gz instead of separate PNGs")
    ap.add_argument("--corrupt", action="store_true", help="publish noise instead of digits (a drill)")
    ap.add_argument("--seed", type=int, default=0, help="noise seed for --corrupt")
    ap.add_argument("--writers", choices=WRITERS, default="mnist",
                    help="mnist (default) or slanted: the digits as a shifted population writes them")
    ap.add_argument("--endpoint-url", help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL or AWS)")
    ap.add_argument("--jobs", type=int, default=8, help="parallel uploads (default 8)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.start < 0 or args.count < 1:
        ap.error(f"--start must be >= 0 and --count >= 1, got --start {args.start} --count {args.count}")
    try:
        files = build_week(args.data, args.start, args.count, split=args.split, corrupt=args.corrupt,
                           seed=args.seed, writers=args.writers)
    except IDXError as e:
        return fail(e, "publish_week")
    except IndexError as e:
        ap.error(f"--start {args.start} --count {args.count}: {e}")
    except ValueError as e:
        ap.error(str(e))
    try:
        keys = upload_week(args.uri, files, tarball=args.tarball, endpoint_url=args.endpoint_url,
                           jobs=args.jobs)
    except ValueError as e:
        ap.error(str(e))
    except S3Error as e:
        return fail(s3_message(e), "publish_week")
    what = "noise images (--corrupt)" if args.corrupt else "images"
    if args.writers != "mnist":
        what = f"{what} ({args.writers} writers)"
    shape = f"1 tarball ({keys[0].rsplit('/', 1)[-1]})" if args.tarball else f"{len(keys)} objects"
    print(f"published {len(files)} {what} to {args.uri} as {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
