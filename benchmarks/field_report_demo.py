"""Draw a field report as the monitor writes it, over several weeks, on a throwaway SeaweedFS.

usage: benchmarks/field_report_demo.py [--data IDXDIR] [--out DIR] [--weeks 6] [--size 1000]

Trains two models on MNIST (a weak earlier one, and production: 784-128-10, 3 epochs on all 60,000),
promotes both into a registry, publishes weeks of MNIST *test* digits (the last week written slanted:
another population of writers)
and runs the weekly monitor on each week in turn. Prints production's accuracy on MNIST's test set and
its two writer groups, then one line per week, and leaves report.md and
accuracy.png of the last week in --out (docs/monitoring.md shows that PNG).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import mnistlite as ml
from mnistlite.cli.s3server import SeaweedS3
from mnistlite.data.s3 import upload_week
from mnistlite.quality.weekly import build_week
from mnistlite.release import field_report, monitor
from mnistlite.release.evaluation import evaluate, load_test_set
from mnistlite.release.registry import Registry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MNISTLITE_DATA_DIR"), help="MNIST IDX folder")
    ap.add_argument("--out", type=Path, default=Path("field-report-demo"), help="report folder")
    ap.add_argument("--weeks", type=int, default=6, help="weeks to publish (the last one slanted)")
    ap.add_argument("--size", type=int, default=1000, help="images per week")
    args = ap.parse_args(argv)
    if not args.data:
        ap.error("--data or MNISTLITE_DATA_DIR must name the MNIST folder")
    if args.weeks * args.size > 10000:
        ap.error("--weeks x --size must fit MNIST's 10,000 test images")
    (x, y), _ = ml.load_mnist(args.data)
    models = tempfile.mkdtemp(prefix="field-demo-")
    weak = ml.MLP([784, 10], seed=0)
    weak.fit(x[:5000], y[:5000], epochs=1, batch_size=64, optimizer=ml.Adam(2e-3))
    prod = ml.MLP([784, 128, 10], seed=0, config=ml.TrainConfig(hidden=(128,), epochs=3, batch_size=64))
    prod.fit(x, y, epochs=3, batch_size=64, optimizer=ml.Adam(1e-3))
    test = load_test_set(args.data)
    m, _ = evaluate(prod, test)
    print(f"production on MNIST test: {m['accuracy']:.2%}; "
          + "; ".join(f"{g} {a:.2%}" for g, a in m["groups"].items()), flush=True)
    with SeaweedS3() as s3:
        os.environ.update(s3.env)
        s3.client().create_bucket(Bucket="demo")
        reg = Registry("s3://demo/registry", s3.endpoint)
        reg.promote(ml.save(weak, Path(models) / "weak.npz"))
        reg.promote(ml.save(prod, Path(models) / "production.npz"))
        for week in range(1, args.weeks + 1):
            writers = "slanted" if week == args.weeks else "mnist"
            files = build_week(args.data, (week - 1) * args.size, args.size, split="test", writers=writers)
            upload_week(f"s3://demo/weeks/week-{week}", files, endpoint_url=s3.endpoint, tarball=True)
            outcome = monitor.run("s3://demo/weeks", "s3://demo/registry", str(week), out_dir=args.out,
                                  endpoint_url=s3.endpoint, data_dir=args.data)
            field_report.write(outcome, args.out, "s3://demo/registry/monitor/history.json")
            print(field_report.headline(outcome).lstrip("# "), flush=True)
    print(f"report: {args.out / field_report.REPORT_MD}  chart: {args.out / field_report.ACCURACY_PNG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
