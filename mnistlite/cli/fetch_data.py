"""Fetch weekly digit folders from S3 into a local folder (parallel, resumable, ETag-skipping).

usage: scripts/fetch_data.py s3://BUCKET/PREFIX --week latest|N|A-B|all --out DIR
                             [--endpoint-url URL] [--jobs 8] [--quiet]

Weeks are s3://BUCKET/PREFIX/week-N/ (or "week N") holding NNNNN_label_D.png files or one images.tar.gz;
they land in DIR/week-N/. Credentials come from the standard AWS chain; the endpoint from --endpoint-url
or AWS_ENDPOINT_URL (MinIO, LocalStack, moto). Exit 0 on success, 1 on an S3 error, 2 on usage errors.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mnistlite.data.fetch import fetch
from mnistlite.data.s3 import S3Error

from .common import fail, s3_message


class Progress:
    """One status line on stderr: rewritten in place on a terminal, at most every 2 s otherwise."""

    def __init__(self, quiet: bool):
        self.quiet, self.tty, self.last = quiet, sys.stderr.isatty(), 0.0

    def __call__(self, week, done, total, nbytes, total_bytes):
        now = time.monotonic()
        if self.quiet or (done < total and now - self.last < (0.1 if self.tty else 2.0)):
            return
        self.last = now
        line = f"{week}: {done}/{total} files, {nbytes / 1e6:.1f}/{total_bytes / 1e6:.1f} MB"
        print(("\r" + line) if self.tty else line, end="\n" if done == total or not self.tty else "",
              file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("uri", help="s3://BUCKET/PREFIX holding week-N folders")
    ap.add_argument("--week", default="latest", help="latest (default), all, N, or a range A-B")
    ap.add_argument("--out", type=Path, required=True, help="local folder; weeks go to OUT/week-N/")
    ap.add_argument("--endpoint-url", help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL or AWS)")
    ap.add_argument("--jobs", type=int, default=8, help="parallel downloads (default 8)")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    try:
        results = fetch(args.uri, args.week, args.out, endpoint_url=args.endpoint_url, jobs=args.jobs,
                        progress=Progress(args.quiet))
    except ValueError as e:
        ap.error(str(e))
    except S3Error as e:
        return fail(s3_message(e), "fetch_data")
    except OSError as e:
        return fail(e, "fetch_data")
    for r in results:
        extra = f", ignored {len(r.ignored)} other keys" if r.ignored else ""
        print(f"{r.week}: {r.files} images in {r.folder} ({r.downloaded} downloaded, "
              f"{r.skipped} already present{extra})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
