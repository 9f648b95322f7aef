"""Build once: the workflows' own shell steps against a real S3 server (SeaweedFS on 127.0.0.1).

retrain.yml keeps the approved candidate keyed by the checked-out tree and the data weeks; cicd.yml
fetches those very bytes (hit), trains only when none matches (miss), refuses a stored file that does
not hash to its record (tampered), and its promote step records the PR's verdict with that sha256.
Each step's `run:` text is executed with bash -e, as the runner would, with the env its `${{ }}`
expressions would give.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mnistlite as ml
from mnistlite.data.s3 import make_client
from mnistlite.release.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32


def load_steps(workflow: str, job: str) -> dict:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
    return {s.get("name"): s for s in doc["jobs"][job]["steps"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Job:
    """A job's working directory: the repository's scripts, a git tree, artifacts/, GITHUB_* files."""

    def __init__(self, where: Path, env: dict):
        self.dir = where
        (where / "artifacts").mkdir(parents=True)
        for name in ("scripts", "mnistlite"):
            (where / name).symlink_to(ROOT / name)
        git = ["git", "-C", str(where), "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
        subprocess.run([*git, "init", "-q"], check=True)
        (where / "tree.txt").write_text("the same tree in the PR and on main\n")
        subprocess.run([*git, "add", "tree.txt"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "tree"], check=True)
        bin_dir = where / "bin"
        bin_dir.mkdir()
        (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')   # the job's `python`
        (bin_dir / "python").chmod(0o755)
        self.output, self.summary = where / "out.txt", where / "summary.md"
        self.output.touch()
        self.env = {**env, "GITHUB_OUTPUT": str(self.output), "GITHUB_STEP_SUMMARY": str(self.summary),
                    "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}

    def step(self, steps: dict, name: str, **extra) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", steps[name]["run"]], cwd=self.dir,
                              env={**self.env, **extra}, capture_output=True, text=True, timeout=300)

    def outputs(self) -> dict:
        return dict(line.split("=", 1) for line in self.output.read_text().split())


@pytest.fixture
def world(tmp_path, s3_bucket):
    """Data weeks on S3, a PR job that trained and passed, and the environment both workflows share."""
    endpoint, bucket = s3_bucket
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "DATA_URI": f"s3://{bucket}/weeks",
           "CANDIDATES_URI": f"s3://{bucket}/candidates", "REGISTRY_URI": f"s3://{bucket}/registry"}
    client = make_client(endpoint)
    for week in ("week-1", "week-2"):
        client.put_object(Bucket=bucket, Key=f"weeks/{week}/00000_label_1.png", Body=b"png")
    pr = Job(tmp_path / "pr", env)
    art = pr.dir / "artifacts"
    ml.save(ml.MLP([784, 16, 10], seed=7), art / "candidate.npz", created="2026-01-01T00:00:00+00:00")
    (art / "candidate.metrics.json").write_text(json.dumps({"train_seconds": 12.5, "blas_threads": 2}))
    candidate = {"accuracy": 0.981, "model_sha256": sha256(art / "candidate.npz")}
    (art / "verdict.json").write_text(json.dumps({"status": "pass", "candidate": candidate}))
    for week in ("week-1", "week-2"):   # what make candidate fetched
        (pr.dir / "data" / "weeks" / week).mkdir(parents=True)
    return {"env": env, "pr": pr, "client": client, "bucket": bucket, "tmp": tmp_path}


def keep(world) -> subprocess.CompletedProcess:
    steps = load_steps("retrain.yml", "gate")
    assert steps["Keep the approved candidate for the merge"]["if"] == "steps.gate.outputs.exit-code == '0'"
    return world["pr"].step(steps, "Keep the approved candidate for the merge", PR_NUMBER="42",
                            RUN_URL="https://github.com/o/r/actions/runs/1")


def test_hit_the_merge_promotes_the_very_bytes_the_pr_approved(world):
    kept = keep(world)
    assert kept.returncode == 0 and "kept: sha256" in kept.stdout, kept.stderr
    approved = sha256(world["pr"].dir / "artifacts" / "candidate.npz")
    main = Job(world["tmp"] / "main", world["env"])
    steps = load_steps("cicd.yml", "train")
    fetched = main.step(steps, "Fetch the approved candidate of this tree")
    assert fetched.returncode == 0, fetched.stderr
    assert main.outputs()["found"] == "true"
    train = steps["Train the candidate on MNIST and the validated weeks"]
    assert train["if"] == "steps.approved.outputs.found != 'true'"   # not run on a hit
    assert sha256(main.dir / "artifacts" / "candidate.npz") == approved
    metrics = json.loads((main.dir / "artifacts" / "candidate.metrics.json").read_text())
    assert metrics["train_seconds"] == 12.5
    summary = main.step(steps, "Write the gate report to the job summary", GATE_EXIT="0", APPROVED="true")
    assert summary.returncode == 0 and "approved candidate for this tree" in main.summary.read_text()
    # The promote job, with the artifacts the train job uploaded: the registry records the PR's bytes
    # and verdict.
    verdict = (world["pr"].dir / "artifacts" / "verdict.json").read_text()
    (main.dir / "artifacts" / "verdict.json").write_text(verdict)
    promote = load_steps("cicd.yml", "promote")
    done = main.step(promote, "Promote the model with the image that serves it", GITHUB_SHA="f00d",
                     DIGEST=DIGEST, IMAGE="ghcr.io/o/r")
    assert done.returncode == 0, done.stderr
    pointer = Registry(world["env"]["REGISTRY_URI"], world["env"]["AWS_ENDPOINT_URL"]).show()
    assert pointer["sha256"] == approved and pointer["image_digest"] == DIGEST
    assert pointer["metrics"]["pr_verdict"] == "pass" and pointer["metrics"]["pr"] == 42
    assert pointer["metrics"]["built_by"] == "pr" and pointer["metrics"]["train_seconds"] == 12.5


def test_miss_a_new_week_means_the_merge_trains_and_says_so(world):
    assert keep(world).returncode == 0
    world["client"].put_object(Bucket=world["bucket"], Key="weeks/week-3/00000_label_2.png", Body=b"png")
    main = Job(world["tmp"] / "main", world["env"])
    steps = load_steps("cicd.yml", "train")
    fetched = main.step(steps, "Fetch the approved candidate of this tree")
    assert fetched.returncode == 0, fetched.stderr
    assert main.outputs()["found"] == "false" and "::notice title=Build once::" in fetched.stdout
    assert "no approved candidate for tree" in fetched.stderr and "week-3" in fetched.stderr
    assert not (main.dir / "artifacts" / "candidate.npz").exists()
    summary = main.step(steps, "Write the gate report to the job summary", GATE_EXIT="0", APPROVED="false")
    assert summary.returncode == 0 and "**trained here**" in main.summary.read_text()


def test_tampered_a_stored_file_that_does_not_match_its_record_fails_the_job(world):
    assert keep(world).returncode == 0
    client, bucket = world["client"], world["bucket"]
    [key] = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="candidates/")["Contents"]
             if o["Key"].endswith(".npz")]
    other = world["tmp"] / "other.npz"
    ml.save(ml.MLP([784, 16, 10], seed=8), other)
    client.put_object(Bucket=bucket, Key=key, Body=other.read_bytes())
    main = Job(world["tmp"] / "main", world["env"])
    fetched = main.step(load_steps("cicd.yml", "train"), "Fetch the approved candidate of this tree")
    assert fetched.returncode == 1 and "refused" in fetched.stderr, fetched.stderr
    assert "found" not in main.outputs() and not (main.dir / "artifacts" / "candidate.npz").exists()


def test_only_a_passing_verdict_is_kept(world):
    (world["pr"].dir / "artifacts" / "verdict.json").write_text(json.dumps({"status": "fail"}))
    refused = keep(world)
    assert refused.returncode == 1 and "only an approved candidate is kept" in refused.stderr
