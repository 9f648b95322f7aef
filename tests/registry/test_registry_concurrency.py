"""Conditional writes: concurrent promotions are serialized and none is lost; a half-done one heals."""
from __future__ import annotations

import json
import threading

import pytest
from registry_kit import assert_chain, client

from mnistlite.release.registry import Registry, history_key, model_key
from mnistlite.serialize import file_sha256


def test_if_match_on_a_missing_key_is_a_refusal_not_an_error(reg):
    """SeaweedFS answers 412 (AWS and moto: 404) to If-Match on a key that does not exist."""
    r, code = reg._call("put_object", "models/missing.json", Body=b"{}", IfMatch='"0123456789abcdef"')
    assert r is None and code in ("PreconditionFailed", "412", "NoSuchKey", "404")
    assert reg._put("models/missing.json", b"{}", IfMatch='"0123456789abcdef"') is False
    assert reg._put("models/missing.json", b"{}", IfNoneMatch="*") is True
    assert reg._put("models/missing.json", b"{}", IfNoneMatch="*") is False   # exists now: 412


@pytest.mark.parametrize("writers", [2, 5, 8])
def test_concurrent_promotions_are_all_recorded_in_order(s3_bucket, model_files, writers):
    endpoint, bucket = s3_bucket
    url = f"s3://{bucket}/team/mnist"
    Registry(url, endpoint).promote(model_files[0])
    barrier, results, errors = threading.Barrier(writers), {}, []

    def promote(i):
        r = Registry(url, endpoint)   # own client per writer, as separate CI jobs would have
        barrier.wait()
        try:
            results[i] = r.promote(model_files[1 + i])[0]
        except Exception as e:  # surfaced below with the thread's index
            errors.append((i, e))

    threads = [threading.Thread(target=promote, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    hist = assert_chain(Registry(url, endpoint))
    assert len(hist) == writers + 1                                       # no promotion lost
    assert sorted(e["version"] for e in results.values()) == list(range(2, writers + 2))
    assert {e["sha256"] for e in hist[1:]} == {file_sha256(p) for p in model_files[1:writers + 1]}
    for e in results.values():                                            # each writer got its own entry
        assert hist[e["version"] - 1] == e


def test_a_crash_between_claim_and_pointer_swap_heals(reg, model_files):
    first, _ = reg.promote(model_files[0])
    # a promoter uploaded m1 and claimed version 2, then died before moving the pointer
    sha1 = file_sha256(model_files[1])
    s3 = client(reg)
    s3.put_object(Bucket=reg.bucket, Key=f"team/mnist/{model_key(sha1)}", Body=model_files[1].read_bytes())
    orphan = {**first, "version": 2, "sha256": sha1, "key": f"team/mnist/{model_key(sha1)}",
              "previous_sha256": first["sha256"], "rollback_version": 1}
    s3.put_object(Bucket=reg.bucket, Key=f"team/mnist/{history_key(2)}", Body=json.dumps(orphan).encode())
    assert reg.show()["version"] == 1
    entry, _ = reg.promote(model_files[2])   # finishes the orphan's swap, then appends its own entry
    assert entry["version"] == 3 and entry["previous_sha256"] == sha1
    assert [e["sha256"] for e in assert_chain(reg)] == [first["sha256"], sha1, file_sha256(model_files[2])]
