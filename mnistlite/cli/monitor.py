"""The weekly field report: score the production model (and the ones before it) on a new labelled week.

usage: scripts/monitor.py s3://BUCKET/PREFIX [--week latest|N] --registry s3://B/P [--endpoint-url URL]
                          [--out DIR] [--data MNISTDIR] [--max-accuracy-drop 0.02] [--max-recall-drop 0.08]
                          [--min-digit-count 20] [--max-age-days 90] [--max-models 5]
                          [--max-bad-fraction 0.01]

Fetches the week, checks it with the data gate, scores each model on the week's good images (accuracy,
per-digit recall, ECE, abstain rate when the model can abstain), appends one record per model to the
field history (s3://B/P/monitor/history.json) and writes OUT/report.md, OUT/accuracy.png and
OUT/outcome.json (default OUT: monitor-report). A week the data gate rejects gets its bad-file report
written next to it on S3 (s3://BUCKET/PREFIX/week-N.bad-files.json). Whenever a person should act,
OUT/issue.json holds the issue's title and body.
Exit 0: production is fine; 1: production's week accuracy is below its MNIST test accuracy minus
--max-accuracy-drop, a digit's recall fell more than --max-recall-drop, or the model is older than
--max-age-days; 2: unusable input (bad arguments, S3 or registry errors, a quarantined week).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnistlite.data.s3 import S3Error, parse_week_spec
from mnistlite.release.field_history import HISTORY
from mnistlite.release.field_report import headline, write
from mnistlite.release.monitor import MonitorPolicy, run
from mnistlite.release.registry import NoProductionModel, RegistryError

from .common import fail, s3_message, show_library_log

PROG = "monitor"
PASS, FAIL, ERROR = 0, 1, 2
FLAGS = {"accuracy": "--max-accuracy-drop", "digit_recall": "--max-recall-drop",
         "model_age": "--max-age-days"}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("uri", help="s3://BUCKET/PREFIX holding week-N folders")
    ap.add_argument("--week", default="latest", help="latest (default) or N")
    ap.add_argument("--registry", required=True, help="the model registry, s3://BUCKET/PREFIX")
    ap.add_argument("--endpoint-url", help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL or AWS)")
    ap.add_argument("--out", type=Path, default=Path("monitor-report"),
                    help="report folder (default %(default)s)")
    ap.add_argument("--data", help="MNIST folder for the models' test accuracy (default: MNISTLITE_DATA_DIR)")
    d = MonitorPolicy()
    ap.add_argument("--max-accuracy-drop", type=float, default=d.max_accuracy_drop,
                    help=f"allowed week accuracy below the MNIST test accuracy "
                         f"(default {d.max_accuracy_drop})")
    ap.add_argument("--max-recall-drop", type=float, default=d.max_recall_drop,
                    help=f"allowed recall drop on any digit (default {d.max_recall_drop})")
    ap.add_argument("--min-digit-count", type=int, default=d.min_digit_count,
                    help=f"judge a digit's recall only with this many images (default {d.min_digit_count})")
    ap.add_argument("--max-age-days", type=float, default=d.max_age_days,
                    help=f"oldest acceptable production model (default {d.max_age_days:g})")
    ap.add_argument("--max-models", type=int, default=d.max_models,
                    help=f"production plus earlier models to score (default {d.max_models})")
    ap.add_argument("--max-bad-fraction", type=float, default=d.max_bad_fraction,
                    help=f"data gate: allowed share of bad images (default {d.max_bad_fraction})")
    args = ap.parse_args(argv)
    try:
        spec = parse_week_spec(args.week)
    except ValueError:
        spec = None
    if spec != "latest" and not (isinstance(spec, tuple) and spec[0] == spec[1]):
        ap.error(f"--week must be latest or N (one week), got {args.week!r}")
    try:
        policy = MonitorPolicy(args.max_accuracy_drop, args.max_recall_drop, args.min_digit_count,
                               args.max_age_days, args.max_models, args.max_bad_fraction)
    except ValueError as e:
        ap.error(str(e))
    return args, policy


def main(argv=None) -> int:
    args, policy = parse_args(argv)
    show_library_log()
    try:
        outcome = run(args.uri, args.registry, args.week, out_dir=args.out, endpoint_url=args.endpoint_url,
                      policy=policy, data_dir=args.data)
    except S3Error as e:
        return fail(s3_message(e), PROG, ERROR)
    except NoProductionModel as e:
        return fail(f"{e}; promote one with scripts/registry.py promote MODEL.npz", PROG, ERROR)
    except (ValueError, RegistryError, OSError) as e:   # MonitorError and EvaluationError are ValueErrors
        return fail(e, PROG, ERROR)
    paths = write(outcome, args.out, f"{args.registry.rstrip('/')}/{HISTORY}")
    print(headline(outcome).lstrip("# "))
    if outcome.status == "quarantined":
        why = "; ".join(outcome.validation["failures"])
        return fail(f"{outcome.week} was quarantined by the data gate ({why}); "
                    f"bad-file report at {outcome.report_uri}; issue text in {paths['issue']}", PROG, ERROR)
    for reason in outcome.reasons:
        flag = FLAGS.get(reason.split(":", 1)[0])
        print(f"  - {reason}" + (f" ({flag})" if flag else ""))
    print(f"  report: {paths['markdown']}  chart: {paths['png']}")
    return PASS if outcome.status == "pass" else FAIL


if __name__ == "__main__":
    sys.exit(main())
