"""scripts/registry.py: in-process and as a process, exit codes and one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from registry_kit import DIGESTS, IMAGE

from mnistlite.serialize import file_sha256

SCRIPT = str(Path(__file__).resolve().parents[2] / "scripts" / "registry.py")


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
