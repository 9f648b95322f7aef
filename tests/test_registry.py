"""The model registry against a real S3 server (SeaweedFS on 127.0.0.1, no patching)."""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading

import boto3
import pytest

import mnistlite as ml
from mnistlite.cli.proc import free_port
from mnistlite.release.registry import (
    POINTER,
    Registry,
    RegistryError,
    history_key,
    image_ref,
    model_key,
    parse_url,
)
from mnistlite.serialize import file_sha256

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "registry.py")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Ten distinct, valid model files (untrained: the registry does not judge quality)."""
    d = tmp_path_factory.mktemp("registry_models")
    return [ml.save(ml.MLP([784, 16, 10], seed=i), d / f"m{i}.npz", metadata={"seed": i}) for i in range(10)]


@pytest.fixture
def reg(s3_bucket):
    endpoint, bucket = s3_bucket
    return Registry(f"s3://{bucket}/team/mnist", endpoint)


def _client(reg):
    return boto3.client("s3", endpoint_url=reg.endpoint_url, region_name="us-east-1")


def _assert_chain(reg):
    """History is versions 1..N, each entry's previous_sha256 is the entry before it, pointer = last."""
    hist = reg.history()
    assert [e["version"] for e in hist] == list(range(1, len(hist) + 1))
    assert hist[0]["previous_sha256"] is None
    for prev, cur in itertools.pairwise(hist):
        assert cur["previous_sha256"] == prev["sha256"]
    assert reg.show() == hist[-1]
    return hist


def test_promote_show_fetch(reg, model_files, tmp_path):
    a, b = model_files[:2]
    entry, changed = reg.promote(a, {"accuracy": 0.97, "per_class": {"recall": [1] * 10}}, "abc123")
    assert changed and entry["version"] == 1 and entry["sha256"] == file_sha256(a)
    assert entry["previous_sha256"] is None and entry["git_commit"] == "abc123"
    assert entry["metrics"] == {"accuracy": 0.97}          # scalars only: no matrices in the pointer
    assert entry["time"].endswith("+00:00")
    stored = _client(reg).get_object(Bucket=reg.bucket, Key=f"team/mnist/{model_key(entry['sha256'])}")
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == entry["sha256"]   # content-addressed

    entry2, _ = reg.promote(b)
    assert entry2["version"] == 2 and entry2["previous_sha256"] == entry["sha256"]
    assert reg.show() == entry2
    out = tmp_path / "sub" / "prod.npz"
    assert reg.fetch(out)["version"] == 2
    assert file_sha256(out) == file_sha256(b) and ml.load(out).layer_sizes == [784, 16, 10]
    _assert_chain(reg)


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
    hist = _assert_chain(reg)
    assert [e["sha256"] for e in hist] == [a, b, c, b, a]
    assert [e["action"] for e in hist] == ["promote"] * 3 + ["rollback"] * 2
    reg.promote(model_files[3])          # promoting after a rollback makes `a` the rollback target
    assert reg.rollback()["sha256"] == a


def test_fetch_refuses_a_tampered_model(reg, model_files, tmp_path):
    entry, _ = reg.promote(model_files[0])
    _client(reg).put_object(Bucket=reg.bucket, Key=f"team/mnist/{model_key(entry['sha256'])}",
                            Body=model_files[1].read_bytes())
    out = tmp_path / "prod.npz"
    with pytest.raises(RegistryError, match="hash mismatch"):
        reg.fetch(out)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("sha", ["../../etc/passwd", "AB" * 32, "ab" * 31, "ab" * 32 + "\n", 7, None])
def test_a_pointer_whose_sha256_is_not_64_lowercase_hex_is_refused(reg, model_files, tmp_path, sha):
    entry, _ = reg.promote(model_files[0])
    _client(reg).put_object(Bucket=reg.bucket, Key="team/mnist/models/production.json",
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
    assert _client(reg).list_objects_v2(Bucket=reg.bucket).get("KeyCount") == 0


def test_metrics_for_another_model_are_refused(reg, model_files):
    with pytest.raises(RegistryError, match="metrics are for model"):
        other = file_sha256(model_files[1])
        reg.promote(model_files[0], {"candidate": {"model_sha256": other, "accuracy": 0.9}})


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


DIGESTS = [f"sha256:{hashlib.sha256(bytes([i])).hexdigest()}" for i in range(4)]
IMAGE = "ghcr.io/owner/mnistlite"


def test_promotion_records_the_image_digest_and_rollback_returns_the_previous_pair(reg, model_files):
    a, b = model_files[:2]
    e1, _ = reg.promote(a, image_digest=DIGESTS[0], image_repository=IMAGE)
    assert (e1["sha256"], e1["image_digest"], e1["image_repository"]) == (file_sha256(a), DIGESTS[0], IMAGE)
    assert image_ref(e1) == f"{IMAGE}@{DIGESTS[0]}"
    # the same model in a new image (service code changed) is a new version; the same pair is a no-op
    e2, changed = reg.promote(a, image_digest=DIGESTS[1], image_repository=IMAGE)
    assert changed and e2["version"] == 2 and e2["previous_image_digest"] == DIGESTS[0]
    assert reg.promote(a, image_digest=DIGESTS[1], image_repository=IMAGE) == (e2, False)
    e3, _ = reg.promote(b, image_digest=DIGESTS[2], image_repository=IMAGE)
    assert reg.show()["image_digest"] == DIGESTS[2]
    r = reg.rollback()
    assert (r["sha256"], r["image_digest"], r["image_repository"]) == (file_sha256(a), DIGESTS[1], IMAGE)
    assert (r["previous_sha256"], r["previous_image_digest"]) == (file_sha256(b), DIGESTS[2])
    assert reg.show() == r
    r2 = reg.rollback()
    assert (r2["sha256"], r2["image_digest"]) == (file_sha256(a), DIGESTS[0])
    _assert_chain(reg)


@pytest.mark.parametrize("digest, repository, match", [
    ("sha256:abc", None, "image digest must look like"),
    (DIGESTS[0].upper(), None, "image digest must look like"),
    ("md5:" + "0" * 64, None, "image digest must look like"),
    (None, IMAGE, "needs its digest too"),
    (DIGESTS[0], "ghcr.io/Owner/Repo", "lowercase name"),
    (DIGESTS[0], f"{IMAGE}:v1", "lowercase name"),
    (DIGESTS[0], f"{IMAGE}@{DIGESTS[0]}", "lowercase name"),
])
def test_malformed_image_references_are_refused_before_any_write(reg, model_files, digest, repository, match):
    with pytest.raises(RegistryError, match=match):
        reg.promote(model_files[0], image_digest=digest, image_repository=repository)
    assert _client(reg).list_objects_v2(Bucket=reg.bucket).get("KeyCount") == 0


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
    hist = _assert_chain(Registry(url, endpoint))
    assert len(hist) == writers + 1                                       # no promotion lost
    assert sorted(e["version"] for e in results.values()) == list(range(2, writers + 2))
    assert {e["sha256"] for e in hist[1:]} == {file_sha256(p) for p in model_files[1:writers + 1]}
    for e in results.values():                                            # each writer got its own entry
        assert hist[e["version"] - 1] == e


def test_a_crash_between_claim_and_pointer_swap_heals(reg, model_files):
    first, _ = reg.promote(model_files[0])
    # a promoter uploaded m1 and claimed version 2, then died before moving the pointer
    sha1 = file_sha256(model_files[1])
    s3 = _client(reg)
    s3.put_object(Bucket=reg.bucket, Key=f"team/mnist/{model_key(sha1)}", Body=model_files[1].read_bytes())
    orphan = {**first, "version": 2, "sha256": sha1, "key": f"team/mnist/{model_key(sha1)}",
              "previous_sha256": first["sha256"], "rollback_version": 1}
    s3.put_object(Bucket=reg.bucket, Key=f"team/mnist/{history_key(2)}", Body=json.dumps(orphan).encode())
    assert reg.show()["version"] == 1
    entry, _ = reg.promote(model_files[2])   # finishes the orphan's swap, then appends its own entry
    assert entry["version"] == 3 and entry["previous_sha256"] == sha1
    assert [e["sha256"] for e in _assert_chain(reg)] == [first["sha256"], sha1, file_sha256(model_files[2])]


def _subprocess(*args, env=None):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture(scope="module")
def cli():
    from mnistlite.cli.registry import main

    return main


def test_cli_promote_show_fetch_rollback(cli, s3_bucket, model_files, tmp_path, capsys, monkeypatch):
    endpoint, bucket = s3_bucket
    where = ["--registry", f"s3://{bucket}/cli", "--endpoint-url", endpoint]

    def run(*args):
        code = cli([*map(str, args), *where])
        out, err = capsys.readouterr()
        return code, out, err

    code, _, err = run("show")
    assert code == 1 and err.startswith("error: no production model yet")
    metrics = tmp_path / "verdict.json"
    candidate = {"accuracy": 0.98, "model_sha256": file_sha256(model_files[0])}
    metrics.write_text(json.dumps({"status": "pass", "candidate": candidate}))
    monkeypatch.setenv("GITHUB_SHA", "f00d")
    code, out, err = run("promote", model_files[0], "--metrics", metrics)
    assert code == 0 and "promoted: version 1" in out, err
    assert run("promote", model_files[1], "--git-commit", "beef")[0] == 0
    pointer = json.loads(run("show")[1])
    expected = (2, "beef", file_sha256(model_files[1]))
    assert (pointer["version"], pointer["git_commit"], pointer["sha256"]) == expected
    out_file = tmp_path / "prod.npz"
    assert run("fetch", "--out", out_file)[0] == 0 and file_sha256(out_file) == file_sha256(model_files[1])
    code, out, _ = run("rollback")
    assert code == 0 and "restores version 1" in out and "image (none)" in out and "helm upgrade" not in out
    pointer = json.loads(run("show")[1])
    expected = (3, file_sha256(model_files[0]), "f00d")
    assert (pointer["version"], pointer["sha256"], pointer["git_commit"]) == expected
    assert pointer["metrics"]["accuracy"] == 0.98
    assert [e["version"] for e in json.loads(run("show", "--history")[1])] == [1, 2, 3]


def test_cli_records_and_shows_the_image_pair(cli, s3_bucket, model_files, capsys):
    endpoint, bucket = s3_bucket
    where = ["--registry", f"s3://{bucket}/pair", "--endpoint-url", endpoint]

    def run(*args):
        code = cli([*map(str, args), *where])
        out, err = capsys.readouterr()
        return code, out.strip(), err

    assert run("promote", model_files[0], "--image-digest", DIGESTS[0], "--image-repository", IMAGE)[0] == 0
    code, out, _ = run("promote", model_files[1], "--image-digest", DIGESTS[1], "--image-repository", IMAGE)
    assert code == 0 and f"image {IMAGE}@{DIGESTS[1]}" in out
    shown = json.loads(run("show")[1])
    assert (shown["sha256"], shown["image_digest"]) == (file_sha256(model_files[1]), DIGESTS[1])
    assert run("show", "--field", "image_digest")[1] == DIGESTS[1]
    assert run("show", "--field", "version")[1] == "2"
    code, out, _ = run("rollback")
    assert code == 0 and f"sha256 {file_sha256(model_files[0])} image {IMAGE}@{DIGESTS[0]}" in out
    assert f"--set image.repository={IMAGE} " in out and f"--set image.digest={DIGESTS[0]} --wait" in out
    assert run("show", "--field", "image_digest")[1] == DIGESTS[0]
    assert run("show", "--field", "sha256")[1] == file_sha256(model_files[0])
    code, _, err = run("show", "--field", "nope")
    assert code == 1 and err.startswith("error: --field 'nope' is not in the pointer")
    code, _, err = run("promote", model_files[2], "--image-digest", "latest")
    assert code == 1 and err.count("\n") == 1 and "sha256:<64 lowercase hex>" in err


def test_cli_records_the_training_run_facts_with_the_verdict(cli, s3_bucket, model_files, tmp_path, capsys):
    """The per-run facts the model file leaves out reach the registry record: --metrics twice, the
    training metrics file then the verdict (whose candidate numbers win where both name a value)."""
    endpoint, bucket = s3_bucket
    sha = file_sha256(model_files[3])
    training = tmp_path / "candidate.metrics.json"
    training.write_text(json.dumps({"train_seconds": 41.5, "peak_rss_mb": 612.0, "blas_threads": 2,
                                    "trained_at": "2026-12-07T10:00:00+00:00", "accuracy": 0.5,
                                    "test_per_class": {"recall": [1.0]}, "model_sha256": sha}))
    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps({"status": "pass", "candidate": {"accuracy": 0.98, "model_sha256": sha}}))
    where = ["--registry", f"s3://{bucket}/runs", "--endpoint-url", endpoint]
    code = cli(["promote", str(model_files[3]), "--metrics", str(training), "--metrics", str(verdict),
                *where])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli(["show", *where]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics == {"train_seconds": 41.5, "peak_rss_mb": 612.0, "blas_threads": 2, "accuracy": 0.98,
                       "trained_at": "2026-12-07T10:00:00+00:00", "model_sha256": sha}


def test_cli_as_a_process_exit_codes_and_one_line_errors(s3_bucket, model_files, tmp_path):
    endpoint, bucket = s3_bucket
    where = ["--registry", f"s3://{bucket}/proc", "--endpoint-url", endpoint]
    r = _subprocess("promote", model_files[0], *where)
    assert r.returncode == 0 and "promoted: version 1" in r.stdout, r.stderr
    r = _subprocess("fetch", "--out", tmp_path / "m.npz", "--registry", "s3://no-such-bucket-here/x",
                    "--endpoint-url", endpoint)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "does not exist" in r.stderr and not (tmp_path / "m.npz").exists()


def test_pointer_key_layout(reg, model_files):
    reg.promote(model_files[0])
    keys = {o["Key"] for o in _client(reg).list_objects_v2(Bucket=reg.bucket)["Contents"]}
    sha = file_sha256(model_files[0])
    assert keys == {f"team/mnist/{POINTER}", f"team/mnist/{history_key(1)}",
                    f"team/mnist/models/sha256-{sha}.npz"}
