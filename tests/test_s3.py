"""Weeks on S3 against a real S3 server (SeaweedFS on 127.0.0.1): listing, fetch, resume, ETags, errors."""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistlite.cli.proc import free_port
from mnistlite.data.fetch import MANIFEST, fetch
from mnistlite.data.images import encode_png, format_name, read_folder
from mnistlite.data.s3 import (
    AccessDenied,
    EndpointUnreachable,
    NoSuchBucket,
    NoWeeks,
    S3Error,
    UnknownWeek,
    Week,
    list_weeks,
    make_client,
    parse_uri,
    select_weeks,
    upload_week,
    week_number,
)
from mnistlite.quality import noise

ROOT = Path(__file__).resolve().parent.parent


def _pngs(n, start=0, seed=0):
    imgs = noise.salt_pepper(n, seed=seed)     # distinct, tiny PNGs; content does not matter here
    return {format_name(start + i, i % 10): encode_png(im) for i, im in enumerate(imgs)}


def _client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def test_parse_uri_and_week_names():
    assert parse_uri("s3://b/p/q/") == ("b", "p/q")
    assert parse_uri("s3://b") == ("b", "")
    with pytest.raises(ValueError, match="s3://BUCKET"):
        parse_uri("http://b/p")
    assert [week_number(n) for n in ("week-2", "week 7", "Week_3", "week10/", "weekly", "week-")] == \
        [2, 7, 3, 10, None, None]


@given(st.sets(st.integers(0, 500), min_size=1, max_size=30))
def test_select_weeks_orders_numerically(numbers):
    weeks = [Week(n, [f"p/week-{n}/"]) for n in sorted(numbers)]
    assert select_weeks(weeks, "latest", "s3://b/p")[0].number == max(numbers)
    assert [w.number for w in select_weeks(weeks, "all", "s3://b/p")] == sorted(numbers)


def test_select_weeks_specs():
    weeks = [Week(n, [f"p/week-{n}/"]) for n in (1, 2, 3, 5)]
    assert [w.number for w in select_weeks(weeks, "1-3", "u")] == [1, 2, 3]
    assert [w.number for w in select_weeks(weeks, "week-5", "u")] == [5]
    with pytest.raises(UnknownWeek,
                       match=r"unknown week 4 under u \(available: week-1, week-2, week-3, week-5\)"):
        select_weeks(weeks, "3-5", "u")
    with pytest.raises(ValueError, match="latest, all, N or A-B"):
        select_weeks(weeks, "newest", "u")
    with pytest.raises(NoWeeks, match=r"no weeks under u \(expected week-N folders\)"):
        select_weeks([], "all", "u")


def test_latest_is_week_10_and_spaced_names_work(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    for week, start in (("week-2", 0), ("week-10", 100), ("week 7", 200)):
        upload_week(f"s3://{bucket}/data/{week}", _pngs(3, start), endpoint_url=endpoint)
    _client(endpoint).put_object(Bucket=bucket, Key="data/notes/readme.txt", Body=b"x")
    client = make_client(endpoint)
    assert [w.name for w in list_weeks(client, bucket, "data")] == ["week-2", "week-7", "week-10"]
    [latest] = fetch(f"s3://{bucket}/data", "latest", tmp_path, endpoint_url=endpoint)
    assert latest.week == "week-10" and latest.downloaded == 3
    assert sorted(p.name for p in (tmp_path / "week-10").glob("*.png"))[0] == "00100_label_0.png"
    [seven] = fetch(f"s3://{bucket}/data", "7", tmp_path, endpoint_url=endpoint)
    assert seven.folder == tmp_path / "week-7" and len(read_folder(seven.folder)) == 3


def test_second_fetch_downloads_nothing_and_changed_object_is_refetched(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    files = _pngs(20)
    upload_week(f"s3://{bucket}/w/week-1", files, endpoint_url=endpoint)
    uri = f"s3://{bucket}/w"
    assert fetch(uri, "all", tmp_path, endpoint_url=endpoint)[0].downloaded == 20
    again = fetch(uri, "all", tmp_path, endpoint_url=endpoint)[0]
    assert (again.downloaded, again.skipped) == (0, 20)
    # Without the manifest, single-part ETags (MD5) still prove the local copies current.
    (tmp_path / MANIFEST).unlink()
    assert fetch(uri, "all", tmp_path, endpoint_url=endpoint)[0].downloaded == 0
    # A changed object (new ETag) and a truncated local file are fetched again.
    name = sorted(files)[3]
    new = encode_png(noise.uniform(1, seed=9)[0])
    _client(endpoint).put_object(Bucket=bucket, Key=f"w/week-1/{name}", Body=new)
    victim = tmp_path / "week-1" / sorted(files)[5]
    victim.write_bytes(victim.read_bytes()[:10])
    r = fetch(uri, "all", tmp_path, endpoint_url=endpoint)[0]
    assert r.downloaded == 2
    assert (tmp_path / "week-1" / name).read_bytes() == new
    assert victim.read_bytes() == files[victim.name]


def test_quarantined_files_are_not_fetched_again(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    files = _pngs(5)
    upload_week(f"s3://{bucket}/w/week-1", files, endpoint_url=endpoint)
    fetch(f"s3://{bucket}/w", "1", tmp_path, endpoint_url=endpoint)
    q = tmp_path / "week-1" / "quarantine"
    q.mkdir()
    name = sorted(files)[0]
    os.replace(tmp_path / "week-1" / name, q / name)
    r = fetch(f"s3://{bucket}/w", "1", tmp_path, endpoint_url=endpoint)[0]
    assert r.downloaded == 0 and not (tmp_path / "week-1" / name).exists()


def test_tarball_week_is_unpacked_safely_and_skipped_next_time(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    files = _pngs(12, start=40)
    upload_week(f"s3://{bucket}/t/week-3", files, tarball=True, endpoint_url=endpoint)
    [r] = fetch(f"s3://{bucket}/t", "latest", tmp_path, endpoint_url=endpoint)
    assert (r.files, r.downloaded) == (12, 1)
    assert {p.name: p.read_bytes() for p in (tmp_path / "week-3").glob("*.png")} == files
    assert not list((tmp_path / "week-3").glob(".*"))       # no tarball or temp file left behind
    again = fetch(f"s3://{bucket}/t", "latest", tmp_path, endpoint_url=endpoint)[0]
    assert (again.files, again.downloaded, again.skipped) == (12, 0, 1)
    # Hostile members: a path escaping the folder is flattened, a symlink is never followed.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = files[sorted(files)[0]]
        info = tarfile.TarInfo("../../evil/00999_label_1.png")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("00998_label_2.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    _client(endpoint).put_object(Bucket=bucket, Key="t/week-4/images.tar.gz", Body=buf.getvalue())
    [r4] = fetch(f"s3://{bucket}/t", "4", tmp_path / "o", endpoint_url=endpoint)
    assert sorted(p.name for p in (tmp_path / "o").rglob("*.png")) == ["00999_label_1.png"]
    assert (tmp_path / "o" / "week-4" / "00999_label_1.png").is_file() and r4.files == 1


def test_killed_fetch_leaves_no_half_written_file_and_resumes(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    files = _pngs(400)
    upload_week(f"s3://{bucket}/k/week-1", files, endpoint_url=endpoint, jobs=16)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/fetch_data.py"), f"s3://{bucket}/k",
                             "--week", "1", "--out", str(out), "--endpoint-url", endpoint, "--jobs", "1",
                             "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    week = out / "week-1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(week.glob("*.png"))) < 30:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    present = {p.name for p in week.glob("*.png")}
    assert 30 <= len(present) < 400, "the fetch was not interrupted midway"
    for name in present:           # every final-named file is complete
        assert (week / name).read_bytes() == files[name]
    (week / ".00001_label_1.png.zzz.part").write_bytes(b"half")   # a leftover temp file, as after a crash
    r = fetch(f"s3://{bucket}/k", "1", out, endpoint_url=endpoint)[0]
    assert r.skipped >= len(present) and r.downloaded + r.skipped == 400
    assert {p.name: p.read_bytes() for p in week.glob("*.png")} == files
    assert not list(week.glob(".*.part"))


def test_no_such_bucket_no_weeks_unknown_week(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    with pytest.raises(NoSuchBucket,
                       match=r"^no such bucket 'absent-bucket-x' \(check the name and region\)$"):
        fetch("s3://absent-bucket-x/p", "all", tmp_path, endpoint_url=endpoint)
    with pytest.raises(NoWeeks, match=rf"^no weeks under s3://{bucket}/p \(expected week-N folders\)$"):
        fetch(f"s3://{bucket}/p", "all", tmp_path, endpoint_url=endpoint)
    upload_week(f"s3://{bucket}/p/week-1", _pngs(1), endpoint_url=endpoint)
    upload_week(f"s3://{bucket}/p/week-3", _pngs(1), endpoint_url=endpoint)
    with pytest.raises(UnknownWeek,
                       match=rf"^unknown week 12 under s3://{bucket}/p \(available: week-1, week-3\)$"):
        fetch(f"s3://{bucket}/p", "12", tmp_path, endpoint_url=endpoint)
    with pytest.raises(NoSuchBucket):
        upload_week("s3://absent-bucket-x/p/week-1", _pngs(1), endpoint_url=endpoint)
    with pytest.raises(ValueError, match="week folder"):
        upload_week(f"s3://{bucket}/p/stuff", _pngs(1), endpoint_url=endpoint)


def test_same_week_stored_twice_is_an_error(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    upload_week(f"s3://{bucket}/d/week 7", _pngs(1), endpoint_url=endpoint)
    upload_week(f"s3://{bucket}/d/week-7", _pngs(1, 5), endpoint_url=endpoint)
    with pytest.raises(S3Error, match="week 7 is stored twice"):
        fetch(f"s3://{bucket}/d", "latest", tmp_path, endpoint_url=endpoint)


def test_endpoint_unreachable_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "K")    # signed requests need some credentials, even unsent
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "S")
    assert (EndpointUnreachable.code, S3Error.code) == ("endpoint_unreachable", "s3_error")
    with socket_closed_port() as port:
        url = f"http://127.0.0.1:{port}"
        client = make_client(url, max_attempts=2, connect_timeout=1)
        with pytest.raises(EndpointUnreachable, match=rf"^cannot reach endpoint {url} \(is it running\? "
                                                      r"check the endpoint URL or AWS_ENDPOINT_URL\)$"):
            fetch("s3://b/p", "all", tmp_path, client=client)


@contextlib.contextmanager
def socket_closed_port():
    """A port nothing listens on (bound then closed: connections are refused)."""
    yield free_port()


def test_access_denied_for_an_identity_without_permissions(s3_bucket, tmp_path, denied_credentials):
    endpoint, bucket = s3_bucket
    upload_week(f"s3://{bucket}/p/week-1", _pngs(1), endpoint_url=endpoint)
    key_id, secret = denied_credentials
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=key_id, aws_secret_access_key=secret)
    with pytest.raises(AccessDenied,
                       match=rf"^access denied to s3://{bucket}/p \(check credentials/policy\)$"):
        fetch(f"s3://{bucket}/p", "all", tmp_path, client=client)
    wrong = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                         aws_access_key_id=key_id, aws_secret_access_key="not-the-secret")
    with pytest.raises(AccessDenied):           # a wrong secret (SignatureDoesNotMatch) is refused too
        fetch(f"s3://{bucket}/p", "all", tmp_path, client=wrong)
    assert fetch(f"s3://{bucket}/p", "all", tmp_path, endpoint_url=endpoint)[0].downloaded == 1


def test_uploads_and_downloads_are_byte_identical(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    files = _pngs(30, seed=3)
    keys = upload_week(f"s3://{bucket}/x/week-9", files, endpoint_url=endpoint)
    assert len(keys) == 30 and keys[0].startswith("x/week-9/")
    obj = _client(endpoint).get_object(Bucket=bucket, Key=keys[0])
    assert obj["ETag"].strip('"') == hashlib.md5(files[keys[0].rsplit("/", 1)[1]]).hexdigest()
    fetch(f"s3://{bucket}/x", "9", tmp_path, endpoint_url=endpoint)
    got = read_folder(tmp_path / "week-9")
    assert len(got) == 30 and got.problems == [] and np.array_equal(got.labels, np.arange(30) % 10)


def _listening(pid: int) -> set:
    """(ip, port) of every TCP socket the process ``pid`` listens on (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:          # 0A: LISTEN
                addr, port = cols[1].split(":")
                ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)) if width == 8 else addr
                found.add((ip, int(port, 16)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
def test_the_s3_server_listens_on_127_0_0_1_only_on_the_ports_it_was_given(seaweed):
    listening = _listening(seaweed.proc.pid)
    assert ("127.0.0.1", int(seaweed.endpoint.rsplit(":", 1)[1])) in listening
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening
    assert {port for _, port in listening} <= set(seaweed.ports.values()), listening
    assert len(set(seaweed.ports.values())) == len(seaweed.ports)          # every port distinct
