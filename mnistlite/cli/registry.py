#!/usr/bin/env python
"""The production model registry on S3: promote, show, fetch, rollback.

  registry.py promote MODEL.npz [--metrics M.json ...] [--git-commit SHA]
                      [--image-digest sha256:... [--image-repository ghcr.io/OWNER/REPO]]
                                                   --registry s3://BUCKET/PREFIX [--endpoint-url URL]
  registry.py show [--history | --field NAME]      --registry s3://BUCKET/PREFIX [--endpoint-url URL]
  registry.py fetch --out PATH                     --registry s3://BUCKET/PREFIX [--endpoint-url URL]
  registry.py rollback [--git-commit SHA]          --registry s3://BUCKET/PREFIX [--endpoint-url URL]

--registry defaults to $MNISTLITE_REGISTRY. --metrics takes evaluate.py's metrics JSON, a verdict JSON
(the candidate's numbers are kept) or train.py's metrics file (with the per-run facts the model file
leaves out: fit seconds, peak memory, threads, when it was trained); repeat it to record several, later
files winning where they share a name. The git commit comes from --git-commit, else
$GITHUB_SHA, else `git rev-parse HEAD`. `show` prints the pointer JSON: the model's sha256 and the
image digest that serves it (null when no image was recorded), metrics, git commit; `--field image_digest`
prints one value alone (empty when null), e.g. for `helm upgrade ... --set image.digest=...` after a
rollback. Errors: one line, exit 1.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from mnistlite.release.registry import BadModelFile, NoProductionModel, Registry, RegistryError, image_ref

from .common import MODEL_FILE_HINT, fail


def git_commit(explicit: str | None) -> str | None:
    """--git-commit, else $GITHUB_SHA, else `git rev-parse HEAD` in the current folder, else None."""
    if explicit or os.environ.get("GITHUB_SHA"):
        return explicit or os.environ["GITHUB_SHA"]
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def parse_args(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", default=os.environ.get("MNISTLITE_REGISTRY"),
                        help="s3://BUCKET/PREFIX (default: $MNISTLITE_REGISTRY)")
    common.add_argument("--endpoint-url", default=None, help="S3-compatible endpoint (SeaweedFS, MinIO, ...)")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("promote", parents=[common], help="upload a model and make it production")
    pr.add_argument("model", help="the .npz model file")
    pr.add_argument("--metrics", action="append", help="metrics or verdict JSON to record with the model "
                                                       "(repeatable)")
    pr.add_argument("--git-commit", help="commit to record (default: $GITHUB_SHA or git rev-parse HEAD)")
    pr.add_argument("--image-digest", help="digest (sha256:...) of the image that serves this model")
    pr.add_argument("--image-repository", help="where that image lives, e.g. ghcr.io/owner/repo")
    sh = sub.add_parser("show", parents=[common], help="print the production pointer JSON")
    what = sh.add_mutually_exclusive_group()
    what.add_argument("--history", action="store_true", help="print every history entry instead")
    what.add_argument("--field", help="print one field of the pointer (e.g. sha256, image_digest, version)")
    fe = sub.add_parser("fetch", parents=[common], help="download the production model, hash-checked")
    fe.add_argument("--out", required=True, help="where to write the model file")
    rb = sub.add_parser("rollback", parents=[common], help="make the previous production model current again")
    rb.add_argument("--git-commit", help="commit to record (default: that of the restored entry)")
    args = p.parse_args(argv)
    if not args.registry:
        p.error("--registry s3://BUCKET/PREFIX is required (or set MNISTLITE_REGISTRY)")
    return args


def run(args) -> None:
    reg = Registry(args.registry, args.endpoint_url)
    if args.command == "promote":
        metrics = None
        for path in args.metrics or ():
            try:
                with open(path) as f:
                    metrics = [*(metrics or []), json.load(f)]
            except (OSError, json.JSONDecodeError) as e:
                raise RegistryError(f"--metrics {path}: cannot read JSON ({e})") from None
        entry, changed = reg.promote(args.model, metrics, git_commit(args.git_commit),
                                     image_digest=args.image_digest, image_repository=args.image_repository)
        state = "promoted" if changed else "already production"
        print(f"{state}: version {entry['version']} sha256 {entry['sha256']} "
              f"image {image_ref(entry) or '(none)'} in {reg.url}")
    elif args.command == "show":
        if args.history:
            print(json.dumps(reg.history(), indent=2, sort_keys=True))
            return
        pointer = reg.show()
        pointer.setdefault("image_digest", None)      # entries written before images were recorded
        pointer.setdefault("image_repository", None)
        if args.field is None:
            print(json.dumps(pointer, indent=2, sort_keys=True))
        elif args.field not in pointer:
            raise RegistryError(f"--field {args.field!r} is not in the pointer; "
                                f"fields: {', '.join(sorted(pointer))}")
        else:
            value = pointer[args.field]
            print("" if value is None else value if isinstance(value, str) else json.dumps(value))
    elif args.command == "fetch":
        p = reg.fetch(args.out)
        print(f"fetched version {p['version']} sha256 {p['sha256']} -> {args.out} (hash verified)")
    else:
        entry = reg.rollback(args.git_commit)
        print(f"rolled back: version {entry['version']} restores version {entry['restores_version']} "
              f"sha256 {entry['sha256']} image {image_ref(entry) or '(none)'} "
              f"(was {entry['previous_sha256']})")
        if entry.get("image_digest"):
            tag = f" --set-string image.tag={entry['git_commit']}" if entry.get("git_commit") else ""
            print(f"put it back into service: helm upgrade mnistlite ./chart --reuse-values "
                  f"--set image.repository={entry.get('image_repository') or 'REPOSITORY'}{tag} "
                  f"--set image.digest={entry['image_digest']} --wait --atomic")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except NoProductionModel as e:
        return fail(f"{e}; promote one with scripts/registry.py promote MODEL.npz")
    except BadModelFile as e:
        return fail(f"{e}; {MODEL_FILE_HINT}")
    except RegistryError as e:
        return fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
