"""Promote, show, fetch and roll back: the registry's history and pointer on a real S3 server."""
from __future__ import annotations

import hashlib

import pytest
from registry_kit import assert_chain, client

import mnistlite as ml
from mnistlite.cli.proc import free_port
from mnistlite.release.registry import POINTER, Registry, RegistryError, history_key, model_key, parse_url
from mnistlite.serialize import file_sha256


def test_promote_show_fetch(reg, model_files, tmp_path):
    a, b = model_files[:2]
    entry, changed = reg.promote(a, {"accuracy": 0.97, "per_class": {"recall": [1] * 10}}, "abc123")
    assert changed and entry["version"] == 1 and entry["sha256"] == file_sha256(a)
    assert entry["previous_sha256"] is None and entry["git_commit"] == "abc123"
    assert entry["metrics"] == {"accuracy": 0.97}          # scalars only: no matrices in the pointer
    assert entry["time"].endswith("+00:00")
    stored = client(reg).get_object(Bucket=reg.bucket, Key=f"team/mnist/{model_key(entry['sha256'])}")
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == entry["sha256"]   # content-addressed

    entry2, _ = reg.promote(b)
    assert entry2["version"] == 2 and entry2["previous_sha256"] == entry["sha256"]
    assert reg.show() == entry2
    out = tmp_path / "sub" / "prod.npz"
    assert reg.fetch(out)["version"] == 2
    assert file_sha256(out) == file_sha256(b) and ml.load(out).layer_sizes == [784, 16, 10]
    assert_chain(reg)


def test_promoting_the_production_model_again_is_a_no_op(reg, model_files):
    reg.promote(model_files[0])
    entry, changed = reg.promote(model_files[0])
    assert not changed and entry["version"] == 1 and len(reg.history()) == 1


def test_rollback_walks_back_and_keeps_history_append_only(reg, model_files):
    a, b, c = (file_sha256(p) for p in model_files[:3])
    for p in model_files[:3]:
        reg.promote(p)
    r1 = reg.rollback()
    assert (r1["version"], r1["sha256"], r1["previous_sha256"], r1["restores_version"]) == (4, b, c, 2)
    r2 = reg.rollback()
    assert (r2["version"], r2["sha256"], r2["previous_sha256"], r2["restores_version"]) == (5, a, b, 1)
    with pytest.raises(RegistryError, match="no earlier model"):
        reg.rollback()
    hist = assert_chain(reg)
    assert [e["sha256"] for e in hist] == [a, b, c, b, a]
    assert [e["action"] for e in hist] == ["promote"] * 3 + ["rollback"] * 2
    reg.promote(model_files[3])          # promoting after a rollback makes `a` the rollback target
    assert reg.rollback()["sha256"] == a


def test_errors_are_one_line(reg, s3_server):
    with pytest.raises(RegistryError, match="no production model yet"):
        reg.show()
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()
    with pytest.raises(RegistryError, match="does not exist"):
        Registry("s3://no-such-bucket-here/x", s3_server).show()
    port = free_port()   # nobody listens there
    with pytest.raises(RegistryError, match="cannot reach"):
        Registry("s3://b/x", f"http://127.0.0.1:{port}").show()
    for url in ("bucket/x", "s3://", "s3:///x"):
        with pytest.raises(RegistryError, match="s3://BUCKET/PREFIX"):
            parse_url(url)


def test_pointer_key_layout(reg, model_files):
    reg.promote(model_files[0])
    keys = {o["Key"] for o in client(reg).list_objects_v2(Bucket=reg.bucket)["Contents"]}
    sha = file_sha256(model_files[0])
    assert keys == {f"team/mnist/{POINTER}", f"team/mnist/{history_key(1)}",
                    f"team/mnist/models/sha256-{sha}.npz"}
