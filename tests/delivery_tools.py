"""Shared helpers and session fixtures for the tests/test_delivery_*.py modules.

The delivery files (Dockerfile, Helm chart, GitHub workflows) are checked offline with real tools,
no Docker, no cluster, no network at run time. The linters live in a cached tools dir made by
``bash tools/install.sh`` (``$MNISTLITE_TOOLS_DIR``, default ~/.cache/mnistlite-tools). Without it
the tests skip, except under CI=true, where they fail.

Test modules load this file as a plugin (``pytest_plugins = ["delivery_tools"]``) so that its
session fixtures exist once per run: one Helm render (``chart_result``), one checkov run per target
(``checkov_reports``), however many modules use them.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
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
# Value sets rendered by the tests: name -> values file (None: the chart's defaults).
VALUE_SETS = {
    "default": None,
    "ingress-networkpolicy": CHART / "ci" / "ingress-networkpolicy-values.yaml",
    "no-autoscaling": CHART / "ci" / "no-autoscaling-values.yaml",
}
INVALID_VALUES = sorted((CHART / "ci" / "invalid").glob("*.yaml"))


# ---------------------------------------------------------------- tools ---------------------------

def missing(what: str):
    """Skip the test (fail it under CI) because a delivery tool is not installed."""
    msg = f"{what} not found under {TOOLS_DIR}: run `bash tools/install.sh` (or set MNISTLITE_TOOLS_DIR)"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        missing(f"venv/bin/{name}")
    return path


def run(cmd, *, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


def tool_env() -> dict:
    """The environment for the linters: no cloud credentials or API keys, no update checks."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BC_", "PRISMA_", "AWS_", "CKV_", "CHECKOV_", "PYTHON"))}
    env.update(CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", NO_COLOR="1", LOG_LEVEL="WARNING")
    return env


# ---------------------------------------------------------------- Dockerfile parsing --------------

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
