"""The weekly field report (scripts/monitor.py) against a real S3 server (SeaweedFS on 127.0.0.1):
exit 0 on a normal week, 1 on a week from a shifted population of writers or a stale model, 2 on
unusable input; the field history gains one record per model per week, and concurrent appends keep
every record."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import uuid

import boto3
import numpy as np
import pytest
from PIL import Image

import mnistlite as ml
from mnistlite.data.s3 import upload_week
from mnistlite.quality.detector import corruption_reasons
from mnistlite.quality.weekly import build_week
from mnistlite.quality.writers import slanted
from mnistlite.release.field_history import FieldHistory
from mnistlite.release.monitor import MonitorPolicy, judge
from mnistlite.release.registry import Registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "monitor.py")
# Weeks come from MNIST's *test* split, which the models never saw. 1,000 images each: 5000..5999 are
# ordinary digits (the small model scores about its MNIST test accuracy on them), 7000..7999 the same
# kind of digits written slanted, as another population of writers would.
NORMAL, SHIFTED, NOISE = 1, 2, 3


@pytest.fixture(scope="module")
def cli():
    from mnistlite.cli import monitor

    log = logging.getLogger("mnistlite")   # main() shows the library's log: undo that for later tests
    before = (list(log.handlers), log.level)
    yield monitor.main
    log.handlers[:] = before[0]
    log.setLevel(before[1])


@pytest.fixture(scope="module")
def field(s3_server, mnist_dir, mnist, small_model_path, tmp_path_factory):
    """A bucket with weeks 1-3 (normal, shifted writers, noise) and a registry whose production is the
    small model, promoted after a weaker earlier model. Returns the URIs and the endpoint."""
    bucket = f"field-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    weeks = f"s3://{bucket}/weeks"
    for k, start, kw in ((NORMAL, 5000, {}), (SHIFTED, 7000, {"writers": "slanted"}),
                         (NOISE, 9000, {"corrupt": True})):
        files = build_week(mnist_dir, start, 1000 if k != NOISE else 200, split="test", **kw)
        upload_week(f"{weeks}/week-{k}", files, endpoint_url=s3_server, tarball=True)
    (x, y), _ = mnist
    weak = ml.MLP([784, 10], seed=0)
    weak.fit(x[:5000], y[:5000], epochs=1, batch_size=64, optimizer=ml.Adam(2e-3))
    weak_path = ml.save(weak, tmp_path_factory.mktemp("field_models") / "weak.npz")
    registry = f"s3://{bucket}/registry"
    reg = Registry(registry, s3_server)
    reg.promote(weak_path)
    reg.promote(small_model_path)
    return {"weeks": weeks, "registry": registry, "endpoint": s3_server, "bucket": bucket,
            "data": str(mnist_dir)}


def _run(cli, field, tmp_path, *extra, week=None):
    args = [field["weeks"], "--registry", field["registry"], "--endpoint-url", field["endpoint"],
            "--out", str(tmp_path / "out"), "--data", field["data"], *map(str, extra)]
    return cli(args + (["--week", str(week)] if week is not None else []))


def _records(field, week):
    reg = Registry(field["registry"], field["endpoint"])
    return [r for r in FieldHistory(reg).records() if r["week"] == week]


def test_normal_week_exits_0_and_records_every_model(cli, field, tmp_path, capsys):
    assert _run(cli, field, tmp_path, week=NORMAL) == 0
    out = capsys.readouterr().out
    assert out.startswith("✅ Field report week-1: fine")
    records = _records(field, NORMAL)
    assert len(records) == 2 and [r["production"] for r in records].count(True) == 1
    prod = next(r for r in records if r["production"])
    assert prod["n"] == 1000 and abs(prod["accuracy"] - prod["mnist_accuracy"]) < 0.02
    assert sum(prod["digit_counts"]) == 1000 and len(prod["recall"]) == 10 and 0 <= prod["ece"] < 0.1
    assert prod["abstain_rate"] is None                      # these models cannot abstain
    weak = next(r for r in records if not r["production"])
    assert weak["registry_version"] == 1 and weak["accuracy"] < prod["accuracy"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| `model_age` | ✅ |" in report and "![accuracy per week per model](accuracy.png)" in report
    with Image.open(tmp_path / "out" / "accuracy.png") as img:
        assert img.format == "PNG" and img.size == (720, 400)
    assert not (tmp_path / "out" / "issue.json").exists()
    # the same week again replaces its records: still one per model
    assert _run(cli, field, tmp_path, week=NORMAL) == 0
    assert len(_records(field, NORMAL)) == 2


def test_shifted_writers_week_exits_1_with_an_issue(field, tmp_path):
    """A real process: the slanted week reads clearly worse, below MNIST accuracy minus the margin."""
    env = dict(os.environ, MNISTLITE_DATA_DIR=field["data"])
    r = subprocess.run([sys.executable, SCRIPT, field["weeks"], "--week", str(SHIFTED),
                        "--registry", field["registry"], "--endpoint-url", field["endpoint"],
                        "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "production failed" in r.stdout and "accuracy:" in r.stdout and "(--max-accuracy-drop)" in r.stdout
    prod = next(x for x in _records(field, SHIFTED) if x["production"])
    assert prod["accuracy"] < prod["mnist_accuracy"] - 0.10
    issue = json.loads((tmp_path / "out" / "issue.json").read_text())
    assert issue["title"].startswith("Field report: production failed on week-2 (accuracy")
    assert "<!-- mnistlite-field-report -->" in issue["body"]
    outcome = json.loads((tmp_path / "out" / "outcome.json").read_text())
    assert outcome["status"] == "fail" and outcome["reasons"][0].startswith("accuracy: week")


def test_quarantined_week_writes_the_bad_file_report_next_to_it(cli, field, tmp_path, capsys):
    assert _run(cli, field, tmp_path) == 2                  # latest is the noise week
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("monitor: week-3 was quarantined by the data gate")
    key = "weeks/week-3.bad-files.json"
    s3 = boto3.client("s3", endpoint_url=field["endpoint"], region_name="us-east-1")
    report = json.loads(s3.get_object(Bucket=field["bucket"], Key=key)["Body"].read())
    assert report["passed"] is False and report["bad_count"] == 200 and len(report["bad"]) == 200
    issue = json.loads((tmp_path / "out" / "issue.json").read_text())
    assert issue["title"] == "Data gate quarantined week-3: 200 of 200 images bad (100.00%)"
    assert f"s3://{field['bucket']}/{key}" in issue["body"] and "corrected dataset" in issue["body"]
    assert "| bad: noise |" in issue["body"] and "`09000_label_7.png`: noise" in issue["body"]
    assert _records(field, NOISE) == []                     # nothing scored


def test_stale_production_model_exits_1(cli, field, tmp_path, capsys):
    assert _run(cli, field, tmp_path, "--max-age-days", "0.0000001", week=NORMAL) == 1
    out = capsys.readouterr().out
    assert "model_age: created" in out and "(--max-age-days)" in out


@pytest.mark.parametrize("change, message", [
    ({"week": 9}, "unknown week 9"),
    ({"registry": "s3://no-such-bucket-x/registry"}, "does not exist"),
    ({"registry": "ftp://x"}, "registry must look like s3://BUCKET/PREFIX"),
    ({"registry": "EMPTY"}, "no production model"),
    ({"data": "/nonexistent"}, "no such folder"),
])
def test_unusable_input_exits_2_with_one_line(cli, field, tmp_path, capsys, change, message):
    f = dict(field)
    if change.get("registry") == "EMPTY":
        change = {"registry": f"s3://{field['bucket']}/empty-registry"}
    f.update({k: v for k, v in change.items() if k != "week"})
    assert _run(cli, f, tmp_path, week=change.get("week", NORMAL)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("monitor: ") and message in err, err


@pytest.mark.parametrize("argv", [["--week", "all"], ["--week", "2-3"], ["--max-accuracy-drop", "2"]])
def test_bad_arguments_exit_2(cli, field, argv):
    with pytest.raises(SystemExit) as e:
        cli([field["weeks"], "--registry", field["registry"], *argv])
    assert e.value.code == 2


def test_concurrent_appends_keep_every_record(s3_bucket):
    """Eight writers, each with its own client, append three records at once: none is lost."""
    endpoint, bucket = s3_bucket
    url = f"s3://{bucket}/registry"

    def records(writer):
        return [{"week": 10 * writer + k, "model_sha256": f"{writer:064x}", "accuracy": 0.9}
                for k in range(3)]

    errors = []

    def work(writer):
        try:
            FieldHistory(Registry(url, endpoint)).append(records(writer))
        except Exception as e:  # noqa: BLE001 — reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = FieldHistory(Registry(url, endpoint)).records()
    assert sorted((r["week"], r["model_sha256"]) for r in stored) == \
        sorted((r["week"], r["model_sha256"]) for w in range(8) for r in records(w))


def _record(**kw):
    base = {"accuracy": 0.95, "mnist_accuracy": 0.96, "recall": [0.95] * 10, "mnist_recall": [0.96] * 10,
            "digit_counts": [100] * 10, "model_created": "2026-12-01T00:00:00+00:00"}
    return {**base, **kw}


def _passed(checks):
    return {c["name"]: c["passed"] for c in checks}


NOW = dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc)


def test_judge_applies_each_rule_of_the_policy():
    policy = MonitorPolicy(max_accuracy_drop=0.02, max_recall_drop=0.08, min_digit_count=20,
                           max_age_days=30)
    everything = {"accuracy": True, "digit_recall": True, "model_age": True}
    assert _passed(judge(_record(), policy, NOW)) == everything
    assert _passed(judge(_record(accuracy=0.94), policy, NOW))["accuracy"] is True     # exactly the margin
    assert _passed(judge(_record(accuracy=0.9399), policy, NOW))["accuracy"] is False
    low = [0.95] * 10
    low[4] = 0.87                                                                       # 9 pp below MNIST
    checks = judge(_record(recall=low), policy, NOW)
    assert _passed(checks)["digit_recall"] is False and "digit 4" in checks[1]["detail"]
    rare = [100] * 10
    rare[4] = 19                                                                        # too few to judge
    assert _passed(judge(_record(recall=low, digit_counts=rare), policy, NOW))["digit_recall"] is True
    old = _record(model_created="2026-10-01T00:00:00+00:00")
    assert _passed(judge(old, policy, NOW))["model_age"] is False
    assert _passed(judge(_record(model_created=None), policy, NOW))["model_age"] is False


def test_slanted_writers_pass_the_data_gate(mnist_uint8):
    _, (xt, _) = mnist_uint8
    s = slanted(xt[:2000])
    assert s.shape == (2000, 28, 28) and s.dtype == np.uint8 and not np.array_equal(s, xt[:2000])
    assert sum(r is not None for r in corruption_reasons(s)) <= 20          # within the gate's 1%


def test_publish_week_writes_slanted_writers(s3_bucket, mnist_dir, mnist_uint8, capsys):
    """The drill's data: publish_week.py --writers slanted uploads the slanted digits, labels unchanged."""
    from mnistlite.cli import publish_week
    from mnistlite.images.decode import decode_image

    endpoint, bucket = s3_bucket
    argv = ["--data", str(mnist_dir), "--split", "test", "--start", "7000", "--count", "5",
            "--writers", "slanted", "--endpoint-url", endpoint, f"s3://{bucket}/w/week-1"]
    assert publish_week.main(argv) == 0
    assert "published 5 images (slanted writers)" in capsys.readouterr().out
    _, (xt, yt) = mnist_uint8
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    body = s3.get_object(Bucket=bucket, Key=f"w/week-1/07000_label_{yt[7000]}.png")["Body"].read()
    assert np.array_equal(decode_image(body), slanted(xt[7000:7001])[0])
