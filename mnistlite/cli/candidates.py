"""Approved candidates: the PR gate keeps the model it approved, the merge fetches those very bytes.

  candidates.py keep MODEL.npz --verdict V.json [--metrics M.json] [--pr N] [--run-url URL]
                     --tree TREE (--data s3://DATA/PREFIX | --weeks-dir DIR) --store s3://BUCKET/PREFIX
  candidates.py fetch --out MODEL.npz [--metrics-out M.json] [--provenance P.json]
                     --tree TREE (--data s3://DATA/PREFIX | --weeks-dir DIR) --store s3://BUCKET/PREFIX
  (each with [--endpoint-url URL])

TREE is `git rev-parse HEAD^{tree}`. The weeks are those under --data now, or the week-N folders
`make candidate` fetched into --weeks-dir (the PR gate keeps with these after training, under its
read-only data role): the same names, so a week published after the PR ran is a miss. `fetch` writes
the model only when its bytes hash to the record's sha256, prints the record, and with --provenance
writes the facts the registry records with the promotion (the PR's verdict, number and run, sha256).
Exit codes: 0 kept / fetched, 3 no approved candidate (train instead), 1 refused (a stored file that does
not match its record, a verdict that is not a pass) or an S3 error, 2 usage error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnistlite.data.s3 import S3Error, week_number
from mnistlite.files import atomic_write_bytes
from mnistlite.release.candidates import (
    CandidateError,
    CandidateMissing,
    CandidateStore,
    data_weeks,
)

from .common import fail

MISSING = 3


def _json(path: str, flag: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CandidateError(f"{flag} {path}: cannot read JSON ({e})") from None


def parse_args(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tree", required=True, help="git tree id the model was trained from")
    weeks = common.add_mutually_exclusive_group(required=True)
    weeks.add_argument("--data", help="s3://BUCKET/PREFIX of the weekly data (its week folders now)")
    weeks.add_argument("--weeks-dir", help="the folder make candidate fetched the weeks into")
    common.add_argument("--store", required=True, help="s3://BUCKET/PREFIX of the approved candidates")
    common.add_argument("--endpoint-url", default=None, help="S3-compatible endpoint (SeaweedFS, MinIO, ...)")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keep", parents=[common], help="store an approved model with its record")
    k.add_argument("model")
    k.add_argument("--verdict", required=True, help="evaluate.py's verdict JSON (must be a pass)")
    k.add_argument("--metrics", help="train.py's metrics JSON")
    k.add_argument("--pr", type=int, help="pull request number")
    k.add_argument("--run-url", help="the gate's workflow run")
    f = sub.add_parser("fetch", parents=[common], help="fetch the approved model, hash-checked")
    f.add_argument("--out", required=True, help="where to write the model file")
    f.add_argument("--metrics-out", help="write the PR's training metrics here (train.py's metrics JSON)")
    f.add_argument("--provenance", help="write the PR's verdict, number, run and sha256 here (JSON)")
    return p.parse_args(argv)


def run(args) -> int:
    store = CandidateStore(args.store, args.endpoint_url)
    if args.data:
        weeks = data_weeks(args.data, args.endpoint_url)
    else:
        folder = Path(args.weeks_dir)
        if not folder.is_dir():
            raise CandidateError(f"--weeks-dir {folder}: no such folder (run make candidate first)")
        weeks = sorted(p.name for p in folder.iterdir() if p.is_dir() and week_number(p.name) is not None)
    if args.command == "keep":
        verdict = _json(args.verdict, "--verdict")
        metrics = _json(args.metrics, "--metrics") if args.metrics else None
        record = store.keep(args.model, args.tree, weeks, verdict, metrics, pr=args.pr, run_url=args.run_url)
        print(f"kept: sha256 {record['sha256']} for tree {args.tree[:12]} and weeks "
              f"{', '.join(record['weeks']) or '(none)'} in {store.url}/{record['key']}")
        return 0
    record = store.fetch(args.tree, weeks, args.out)
    print(json.dumps({k: record.get(k) for k in ("sha256", "tree", "weeks", "pr", "run_url", "kept")},
                     indent=2, sort_keys=True))
    if args.metrics_out:
        metrics = json.dumps(record.get("metrics") or {}, indent=2) + "\n"
        atomic_write_bytes(args.metrics_out, metrics.encode())
    if args.provenance:
        facts = {"built_by": "pr", "pr": record.get("pr"), "pr_run_url": record.get("run_url"),
                 "pr_verdict": (record.get("verdict") or {}).get("status"), "pr_sha256": record["sha256"],
                 "model_sha256": record["sha256"]}
        atomic_write_bytes(args.provenance, (json.dumps(facts, indent=2) + "\n").encode())
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except CandidateMissing as e:
        return fail(e, "miss", MISSING)
    except (CandidateError, S3Error, ValueError) as e:
        return fail(e)


if __name__ == "__main__":
    sys.exit(main())
