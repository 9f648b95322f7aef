"""The data scripts as users run them: publish -> fetch -> validate -> train, exit codes, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

import mnistlite as ml
from mnistlite.cli.proc import free_port

ROOT = Path(__file__).resolve().parent.parent


def run(script, *args, env=None):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_MAX_ATTEMPTS": "2", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *map(str, args)],
                          capture_output=True, text=True, env=full_env, timeout=300)


def one_line_error(r, code=1):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def published(s3_server, mnist_dir):
    """A bucket seeded by publish_week.py: week-1 (PNGs), week-2 (tarball), week-3 (--corrupt)."""
    bucket = f"pub-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    weeks = (("week-1", 0, ()), ("week 2", 300, ("--tarball",)), ("week-3", 600, ("--corrupt",)))
    for week, start, extra in weeks:
        r = run("publish_week.py", "--data", mnist_dir, "--start", start, "--count", 300,
                f"s3://{bucket}/digits/{week}", "--endpoint-url", s3_server, *extra)
        assert r.returncode == 0, r.stderr
        assert "published 300" in r.stdout
    return s3_server, bucket


def test_publish_fetch_validate_train_round_trip(published, tmp_path, mnist_dir):
    endpoint, bucket = published
    out = tmp_path / "weeks"
    r = run("fetch_data.py", f"s3://{bucket}/digits", "--week", "all", "--out", out,
            "--endpoint-url", endpoint)
    assert r.returncode == 0, r.stderr
    assert "week-1: 300 images" in r.stdout and "week-2: 300 images" in r.stdout
    again = run("fetch_data.py", f"s3://{bucket}/digits", "--week", "all", "--out", out,
                "--endpoint-url", endpoint)
    assert again.returncode == 0 and again.stdout.count("(0 downloaded") == 3
    ok = run("validate_data.py", out / "week-1", "--report", tmp_path / "r1.json")
    assert ok.returncode == 0 and ok.stdout.startswith("PASS")
    bad = run("validate_data.py", out / "week-3", "--report", tmp_path / "r3.json")
    assert bad.returncode == 1 and bad.stdout.startswith("FAIL")
    report = json.loads((tmp_path / "r3.json").read_text())
    assert len(report["bad"]) == 300 and {"file", "reason"} == set(report["bad"][0])
    assert len(list((out / "week-3" / "quarantine").glob("*.png"))) == 300
    # Training from S3: default "all" trains on the weeks that pass and warns about week-3.
    model = tmp_path / "m.npz"
    t = run("train.py", "--data", f"s3://{bucket}/digits", "--endpoint-url", endpoint,
            "--work-dir", tmp_path / "work", "--hidden", "32", "--epochs", "5", "--batch-size", "32",
            "--quiet", "--out", model, "--metrics", tmp_path / "m.json")
    assert t.returncode == 0, t.stderr
    assert "week-3" in t.stderr and "skipping" in t.stderr
    assert "600 images from week-1, week-2" in t.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["test_accuracy"] > 0.6               # 600 images, 5 epochs: far above chance (0.1)
    assert ml.load(model).layer_sizes == [784, 32, 10]


def test_train_refuses_an_explicit_failing_week_with_report_path(published, tmp_path):
    endpoint, bucket = published
    t = run("train.py", "--data", f"s3://{bucket}/digits", "--weeks", "3", "--endpoint-url", endpoint,
            "--work-dir", tmp_path / "work", "--quiet", "--out", tmp_path / "m.npz")
    msg = one_line_error(t)
    assert "week-3" in msg and str(tmp_path / "work" / "reports" / "week-3.json") in msg
    assert not (tmp_path / "m.npz").exists()


def test_fetch_errors_exit_1_with_one_line(published, tmp_path):
    endpoint, bucket = published
    base = ("--out", tmp_path / "o", "--endpoint-url", endpoint)
    assert one_line_error(run("fetch_data.py", "s3://no-such-bucket-zz/p", *base)) == \
        "fetch_data: no such bucket 'no-such-bucket-zz' (check the name and region)"
    assert one_line_error(run("fetch_data.py", f"s3://{bucket}/empty", *base)) == \
        f"fetch_data: no weeks under s3://{bucket}/empty (expected week-N folders)"
    assert one_line_error(run("fetch_data.py", f"s3://{bucket}/digits", "--week", "12", *base)) == \
        f"fetch_data: unknown week 12 under s3://{bucket}/digits (available: week-1, week-2, week-3)"
    port = free_port()
    msg = one_line_error(run("fetch_data.py", f"s3://{bucket}/digits", "--out", tmp_path / "o",
                             "--endpoint-url", f"http://127.0.0.1:{port}"))
    assert msg.startswith(f"fetch_data: cannot reach endpoint http://127.0.0.1:{port} (is it running?")
    assert msg.endswith("; set it with --endpoint-url")
    # AWS_ENDPOINT_URL is honoured when no flag is given.
    r = run("fetch_data.py", f"s3://{bucket}/digits", "--week", "1", "--out", tmp_path / "e",
            env={"AWS_ENDPOINT_URL": endpoint})
    assert r.returncode == 0 and (tmp_path / "e" / "week-1").is_dir()


def test_fetch_access_denied(published, tmp_path, denied_credentials):
    endpoint, bucket = published
    key_id, secret = denied_credentials
    msg = one_line_error(run("fetch_data.py", f"s3://{bucket}/digits", "--out", tmp_path / "o",
                             "--endpoint-url", endpoint,
                             env={"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}))
    assert msg == f"fetch_data: access denied to s3://{bucket}/digits (check credentials/policy)"


def test_usage_errors_exit_2(tmp_path, mnist_dir):
    assert run("fetch_data.py", "s3://b/p", "--week", "newest", "--out", tmp_path).returncode == 2
    assert run("fetch_data.py", "http://b/p", "--out", tmp_path).returncode == 2
    assert run("fetch_data.py", "s3://b/p").returncode == 2                    # --out missing
    assert run("validate_data.py", tmp_path / "missing").returncode == 2
    assert run("validate_data.py", tmp_path, "--max-bad-fraction", "3").returncode == 2
    r = run("publish_week.py", "--data", mnist_dir, "--start", "59999", "--count", "5", "s3://b/p/week-1")
    assert r.returncode == 2 and "--start 59999 --count 5: images 59999..60003 do not fit" in r.stderr
    r = run("publish_week.py", "--data", mnist_dir, "--start", "0", "--count", "0", "s3://b/p/week-1")
    assert r.returncode == 2 and "--count >= 1" in r.stderr
    r = run("publish_week.py", "--data", mnist_dir, "--start", "0", "--count", "5", "s3://b/p/not-a-week")
    assert r.returncode == 2 and "week folder" in r.stderr
    r = run("publish_week.py", "--data", tmp_path, "--start", "0", "--count", "5", "s3://b/p/week-1")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_scripts_show_the_library_log_on_stderr_once(capsys):
    import logging

    from mnistlite.cli import common as cli

    log = logging.getLogger("mnistlite")
    before = (list(log.handlers), log.level)
    try:
        cli.show_library_log()
        cli.show_library_log()                 # idempotent: one line per record, not two
        logging.getLogger("mnistlite.data.mnist").info("downloaded %s to %s", "x.gz", "/tmp/d")
        assert capsys.readouterr().err == "downloaded x.gz to /tmp/d\n"
        assert cli.fail("boom", "fetch_data", code=2) == 2
        assert capsys.readouterr().err == "fetch_data: boom\n"
    finally:
        log.handlers[:] = before[0]
        log.setLevel(before[1])
