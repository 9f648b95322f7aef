"""Weeks for training: fetch + validate + load, refusing weeks that fail the data gate."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mnistlite.data.s3 import UnknownWeek, upload_week
from mnistlite.quality.weekly import DataRejected, build_week, prepare_weeks


@pytest.fixture(scope="module")
def weeks_bucket(s3_server, mnist_dir):
    """One bucket for the module (read-only in the tests): week-1 and week-2 (a tarball) of real
    digits, week-3 of noise (the incident), week-10 of real digits; 100 images each."""
    import uuid

    import boto3

    bucket = f"weeks-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    for k, start, corrupt in ((1, 0, False), (2, 100, False), (3, 200, True), (10, 300, False)):
        upload_week(f"s3://{bucket}/weekly/week-{k}", build_week(mnist_dir, start, 100, corrupt=corrupt),
                    endpoint_url=s3_server, tarball=(k == 2))
    return s3_server, f"s3://{bucket}/weekly"


def test_all_trains_on_every_passing_week_and_skips_the_noise_week(weeks_bucket, tmp_path, mnist_uint8,
                                                                   caplog, capsys):
    endpoint, uri = weeks_bucket
    logs = []
    data = prepare_weeks(uri, "all", tmp_path, endpoint_url=endpoint, log=logs.append)
    assert data.weeks == ["week-1", "week-2", "week-10"] and data.skipped == ["week-3"]
    assert data.images.shape == (300, 28, 28)
    assert data.images.dtype == np.uint8 and data.labels.dtype == np.int64
    (x, y), _ = mnist_uint8
    order = np.concatenate([np.arange(0, 200), np.arange(300, 400)])
    assert np.array_equal(data.images, x[order]) and np.array_equal(data.labels, y[order])
    assert len(logs) == 1 and "week-3" in logs[0] and "week-3.json" in logs[0]
    with caplog.at_level("WARNING", logger="mnistlite"):   # without ``log``: a warning record, no print
        assert prepare_weeks(uri, "all", tmp_path, endpoint_url=endpoint).skipped == ["week-3"]
    assert [r.getMessage() for r in caplog.records] == logs and capsys.readouterr() == ("", "")
    report = json.loads((tmp_path / "reports" / "week-3.json").read_text())
    assert report["passed"] is False and len(report["bad"]) == 100
    assert len(list((tmp_path / "week-3" / "quarantine").glob("*.png"))) == 100


def test_explicit_failing_week_or_range_raises_with_report_path(weeks_bucket, tmp_path):
    endpoint, uri = weeks_bucket
    with pytest.raises(DataRejected, match=r"week-3: .*bad images.*report: .*reports/week-3\.json"):
        prepare_weeks(uri, "3", tmp_path, endpoint_url=endpoint)
    with pytest.raises(DataRejected, match="week-3"):
        prepare_weeks(uri, "2-3", tmp_path, endpoint_url=endpoint)
    # A rerun after quarantine must not turn the failing week into a pass.
    with pytest.raises(DataRejected):
        prepare_weeks(uri, "3", tmp_path, endpoint_url=endpoint)


def test_latest_and_ranges(weeks_bucket, tmp_path):
    endpoint, uri = weeks_bucket
    assert prepare_weeks(uri, "latest", tmp_path, endpoint_url=endpoint).weeks == ["week-10"]
    d = prepare_weeks(uri, "1-2", tmp_path, endpoint_url=endpoint)
    assert d.weeks == ["week-1", "week-2"] and len(d.labels) == 200 and len(d.reports) == 2
    with pytest.raises(UnknownWeek):
        prepare_weeks(uri, "4-10", tmp_path, endpoint_url=endpoint)


def test_all_raises_when_no_week_passes(s3_bucket, mnist_dir, tmp_path):
    endpoint, bucket = s3_bucket
    bad = build_week(mnist_dir, 0, 50, corrupt=True)
    upload_week(f"s3://{bucket}/bad/week-1", bad, endpoint_url=endpoint)
    with pytest.raises(DataRejected, match="no week passed validation"):
        prepare_weeks(f"s3://{bucket}/bad", "all", tmp_path, endpoint_url=endpoint, log=lambda m: None)


def test_build_week_names_and_checks(mnist_dir, mnist_uint8):
    files = build_week(mnist_dir, 5, 3)
    (_, y), _ = mnist_uint8
    assert sorted(files) == [f"{5 + i:05d}_label_{y[5 + i]}.png" for i in range(3)]
    assert all(v.startswith(b"\x89PNG") for v in files.values())
    test_files = build_week(mnist_dir, 0, 2, split="test")
    assert sorted(test_files) != sorted(build_week(mnist_dir, 0, 2))
    with pytest.raises(IndexError, match="^images 59990..60009 do not fit the 60000 train images$"):
        build_week(mnist_dir, 59990, 20)
    with pytest.raises(ValueError, match="^start must be >= 0 and count >= 1"):
        build_week(mnist_dir, 0, 0)
    with pytest.raises(ValueError, match="split"):
        build_week(mnist_dir, 0, 1, split="val")
