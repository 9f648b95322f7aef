#!/usr/bin/env python
"""Evaluate one model, or gate a candidate against production on a fixed test set.

  evaluate.py --model M.npz [--data DIR] [--out metrics.json] [--pictures DIR]
  evaluate.py --candidate NEW.npz [--production PROD.npz] [--data DIR] [--report report.md]
              [--verdict verdict.json] [--min-accuracy 0.97] [--max-drop 0.002]
              [--max-class-drop 0.01] [--max-group-drop 0.01] [--alpha 0.05] [--require-improvement]
              [--assets-url URL]

--data: an MNIST IDX folder (t10k files) or a folder of NNNNN_label_D.png; default: MNIST's test
split from MNISTLITE_DATA_DIR. Without --production (first deploy) only the accuracy floor applies.
Exit codes (compare mode): 0 pass, 1 fail, 2 could not evaluate. The verdict JSON and the report
are written in every case, errors included.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnistlite.files import atomic_write_bytes
from mnistlite.release.evaluation import (
    BadModelFile,
    EvaluationError,
    TestSetError,
    compare_files,
    error_verdict,
    evaluate,
    load_model,
    load_test_set,
)
from mnistlite.release.gate import Policy
from mnistlite.release.report import (
    CONFUSION_PNG,
    ERRORS_PNG,
    confusion_png,
    errors_png,
    headline,
    write_report,
)

from .common import MODEL_FILE_HINT, fail, show_library_log

PASS, FAIL, ERROR = 0, 1, 2
# The flag that sets each gate check's threshold, named after a failed check's reason.
CHECK_FLAGS = {"min_accuracy": "--min-accuracy", "non_inferiority": "--max-drop",
               "class_recall": "--max-class-drop", "mcnemar": "--alpha",
               "improvement": "--require-improvement", "writer_groups": "--max-group-drop",
               "calibration": "--max-ece-rise", "reject_rate": "--max-reject-rise"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--model", help="evaluate one model file")
    mode.add_argument("--candidate", help="compare this model file against --production")
    p.add_argument("--production", help="the production model file (omit on first deploy)")
    p.add_argument("--data", help="test set folder (default: MNIST t10k from MNISTLITE_DATA_DIR)")
    p.add_argument("--out", help="metrics JSON to write (--model mode)")
    p.add_argument("--pictures", help="folder for confusion.png and errors.png (--model mode)")
    p.add_argument("--report", help="Markdown report to write; PNGs go next to it (compare mode)")
    p.add_argument("--verdict", help="verdict JSON to write (compare mode)")
    p.add_argument("--assets-url", default="", help="URL prefix for the PNG links in the report")
    d = Policy()
    p.add_argument("--min-accuracy", type=float, default=d.min_accuracy,
                   help=f"absolute floor (default {d.min_accuracy})")
    p.add_argument("--max-drop", type=float, default=d.max_drop,
                   help=f"allowed accuracy drop vs production (default {d.max_drop})")
    p.add_argument("--max-class-drop", type=float, default=d.max_class_drop,
                   help=f"allowed recall drop on any digit (default {d.max_class_drop})")
    p.add_argument("--alpha", type=float, default=d.alpha,
                   help=f"McNemar significance level (default {d.alpha})")
    p.add_argument("--max-group-drop", type=float, default=d.max_group_drop,
                   help=f"allowed accuracy drop on either writer group of MNIST's test set "
                        f"(default {d.max_group_drop})")
    p.add_argument("--require-improvement", action="store_true", help="candidate must beat production")
    p.add_argument("--max-ece-rise", type=float, default=d.max_ece_rise,
                   help=f"allowed ECE rise vs production, both calibrated (default {d.max_ece_rise})")
    p.add_argument("--max-reject-rise", type=float, default=d.max_reject_rise,
                   help=f"allowed rise of the share rejected for 0.5%% error (default {d.max_reject_rise})")
    args = p.parse_args(argv)
    if args.candidate and args.pictures:
        p.error("--pictures goes with --model; compare mode writes its PNGs next to --report")
    if args.model and (args.production or args.report or args.verdict):
        p.error("--production, --report and --verdict go with --candidate, not --model")
    if args.candidate and args.out:
        p.error("--out goes with --model; use --verdict in compare mode")
    return p, args


def _write_json(path, doc):
    atomic_write_bytes(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def _policy(args) -> Policy:
    return Policy(args.min_accuracy, args.max_drop, args.max_class_drop, args.alpha, args.require_improvement,
                  max_group_drop=args.max_group_drop, max_ece_rise=args.max_ece_rise,
                  max_reject_rise=args.max_reject_rise)


def _message(e: EvaluationError) -> str:
    """The library's message, naming --data when the test set folder is at fault."""
    if isinstance(e, BadModelFile):
        return f"{e}; {MODEL_FILE_HINT}"
    if not isinstance(e, TestSetError):
        return str(e)
    hint = " (check it with scripts/validate_data.py)" if e.problems else ""
    return f"--data {e}{hint}"


def _with_flag(reason: str) -> str:
    """A verdict reason ("check: detail") followed by the flag that sets that check's threshold."""
    flag = CHECK_FLAGS.get(reason.split(":", 1)[0])
    return f"{reason} ({flag})" if flag else reason


def evaluate_one(args) -> int:
    try:
        test = load_test_set(args.data)
        m, proba = evaluate(load_model(args.model, test), test, args.model)
    except EvaluationError as e:
        return fail(_message(e), code=ERROR)
    try:
        if args.out:
            _write_json(args.out, m)
        if args.pictures:
            folder = Path(args.pictures)
            confusion_png(m["confusion_matrix"], folder / CONFUSION_PNG,
                          title="true (rows) x predicted (cols)")
            errors_png(test.images, test.labels, proba.argmax(axis=1), folder / ERRORS_PNG)
    except OSError as e:
        return fail(f"cannot write outputs ({e.strerror or e}: {e.filename})", code=ERROR)
    print(f"{args.model}: accuracy {m['accuracy']:.4f}  log loss {m['log_loss']:.4f}  ECE {m['ece']:.4f}  "
          f"n {m['n']}  model {m['model_sha256'][:12]}  test set {m['test_set_sha256'][:12]}")
    for group, acc in m["groups"].items():
        print(f"  accuracy, {group}: {acc:.4f}")
    print(f"  calibrated {'yes' if m['calibrated'] else 'no'}  rejected for 0.5% error "
          f"{m['reject_for_0.5pct_error']:.4f}  abstained at its thresholds {m['abstained']:.4f} "
          f"(error among answered {m['error_answered']:.4f})")
    return PASS


def compare(args) -> int:
    policy = _policy(args)
    comparison = None
    try:
        comparison = compare_files(args.candidate, args.production, args.data, policy)
        verdict = comparison.verdict
    except EvaluationError as e:
        verdict = error_verdict(_message(e), policy, first_deploy=args.production is None)
    try:
        if args.verdict:
            _write_json(args.verdict, verdict)
        if args.report:
            write_report(args.report, verdict, comparison, args.assets_url)
    except OSError as e:
        return fail(f"cannot write outputs ({e.strerror or e}: {e.filename})", code=ERROR)
    print(headline(verdict).lstrip("# "))
    for reason in verdict["reasons"]:
        print(f"  - {_with_flag(reason)}", file=sys.stderr if verdict["status"] == "error" else sys.stdout)
    return {"pass": PASS, "fail": FAIL}.get(verdict["status"], ERROR)


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    show_library_log()
    try:
        _policy(args)
    except ValueError as e:
        parser.error(str(e))
    return evaluate_one(args) if args.model else compare(args)


if __name__ == "__main__":
    sys.exit(main())
