"""What the registry refuses: tampered models and pointers, unreadable models, metrics for another model."""
from __future__ import annotations

import json

import pytest
from registry_kit import client

from mnistlite.release.registry import RegistryError, model_key
from mnistlite.serialize import file_sha256


def test_fetch_refuses_a_tampered_model(reg, model_files, tmp_path):
    entry, _ = reg.promote(model_files[0])
    client(reg).put_object(Bucket=reg.bucket, Key=f"team/mnist/{model_key(entry['sha256'])}",
                            Body=model_files[1].read_bytes())
    out = tmp_path / "prod.npz"
    with pytest.raises(RegistryError, match="hash mismatch"):
        reg.fetch(out)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("sha", ["../../etc/passwd", "AB" * 32, "ab" * 31, "ab" * 32 + "\n", 7, None])
def test_a_pointer_whose_sha256_is_not_64_lowercase_hex_is_refused(reg, model_files, tmp_path, sha):
    entry, _ = reg.promote(model_files[0])
    client(reg).put_object(Bucket=reg.bucket, Key="team/mnist/models/production.json",
                            Body=json.dumps({**entry, "sha256": sha}).encode())
    out = tmp_path / "prod.npz"
    for call in (reg.show, lambda: reg.fetch(out), reg.rollback):
        with pytest.raises(RegistryError, match="sha256 must be 64 lowercase hex") as e:
            call()
        assert "production.json" in str(e.value) and "\n" not in str(e.value)
    assert not out.exists()


def test_corrupt_model_is_refused_before_upload(reg, model_files, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(model_files[0].read_bytes()[:500])
    with pytest.raises(RegistryError, match="not a readable"):
        reg.promote(bad)
    assert client(reg).list_objects_v2(Bucket=reg.bucket).get("KeyCount") == 0


def test_metrics_for_another_model_are_refused(reg, model_files):
    with pytest.raises(RegistryError, match="metrics are for model"):
        other = file_sha256(model_files[1])
        reg.promote(model_files[0], {"candidate": {"model_sha256": other, "accuracy": 0.9}})
