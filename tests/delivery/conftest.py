"""Fixtures for the delivery tests: the Dockerfile, the Helm chart and the GitHub workflows, offline.

They are checked with real tools and no Docker, cluster or network at run time. The linters live in a
cached tools dir made by ``bash tools/install.sh`` (``$MNISTLITE_TOOLS_DIR``, default
~/.cache/mnistlite-tools). Without it the tests skip, except under CI=true, where they fail.
The session fixtures run the expensive work once however many modules use it: one Helm render
(``chart_result``) and one checkov run per target (``checkov_reports``).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TOOLS_DIR = Path(os.environ.get("MNISTLITE_TOOLS_DIR") or Path.home() / ".cache" / "mnistlite-tools")
CHART = ROOT / "chart"
RELEASE, NAMESPACE = "mnistlite", "mnistlite"
# Value sets rendered by the tests: name -> values file (None: the chart's defaults).
VALUE_SETS = {
    "default": None,
    "ingress-networkpolicy": CHART / "ci" / "ingress-networkpolicy-values.yaml",
    "no-autoscaling": CHART / "ci" / "no-autoscaling-values.yaml",
    "monitoring": CHART / "ci" / "monitoring-values.yaml",
}
INVALID_VALUES = sorted((CHART / "ci" / "invalid").glob("*.yaml"))
CHECKOV_TARGETS = {  # name -> checkov arguments (the chart's value sets are added by the fixture)
    "dockerfile": ["--file", ROOT / "Dockerfile", "--framework", "dockerfile"],
    "workflows": ["--directory", ROOT / ".github", "--framework", "github_actions"],
}


class Digit(NamedTuple):
    png: Path
    label: int


def _run(cmd, *, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


def _missing(what: str):
    msg = f"{what} not found under {TOOLS_DIR}: run `bash tools/install.sh` (or set MNISTLITE_TOOLS_DIR)"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def _tool(name: str) -> Path:
    path = TOOLS_DIR / "venv" / "bin" / name
    if not path.exists():
        _missing(f"venv/bin/{name}")
    return path


def _tool_env() -> dict:
    """The environment for the linters: no cloud credentials or API keys, no update checks."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BC_", "PRISMA_", "AWS_", "CKV_", "CHECKOV_", "PYTHON"))}
    env.update(CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", NO_COLOR="1", LOG_LEVEL="WARNING")
    return env


# ---------------------------------------------------------------- paths and tools -----------------

@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def digit() -> Digit:
    """The committed MNIST digit the image, the chart's helm test and the contract test POST."""
    return Digit(ROOT / "tests" / "data" / "digit_7.png", 7)


@pytest.fixture(scope="session")
def workflows() -> list[Path]:
    return sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


@pytest.fixture(scope="session")
def tools_dir() -> Path:
    return TOOLS_DIR


@pytest.fixture(scope="session")
def run():
    """run(cmd, timeout=300, **subprocess_kw) -> CompletedProcess with text stdout/stderr."""
    return _run


@pytest.fixture(scope="session")
def missing():
    """missing(what): skip the test (fail it under CI) because a delivery tool is not installed."""
    return _missing


@pytest.fixture(scope="session")
def tool():
    """tool(name) -> the path of a linter in the tools venv (skips or fails when it is absent)."""
    return _tool


# ---------------------------------------------------------------- the Dockerfile ------------------

@pytest.fixture(scope="session")
def dockerfile() -> list[tuple[int, str, str]]:
    """[(stage_index, INSTRUCTION, argument text)] with continuations joined, comments dropped;
    instructions before the first FROM have stage -1."""
    out, stage, buf = [], -1, ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
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


@pytest.fixture(scope="session")
def final_stage(dockerfile) -> list[tuple[str, str]]:
    """The image's own stage: [(INSTRUCTION, argument text)]."""
    last = max(s for s, _, _ in dockerfile)
    return [(w, a) for s, w, a in dockerfile if s == last]


@pytest.fixture(scope="session")
def parse_env():
    """parse_env('k=v k2="v 2"') -> dict, the arguments of one ENV instruction (values unexpanded)."""
    return lambda arg: dict(tok.split("=", 1) for tok in shlex.split(arg))


# ---------------------------------------------------------------- the Helm chart ------------------

@pytest.fixture(scope="session")
def chart_result(tmp_path_factory):
    """Lint + render every value set + try every invalid values file, once, via Helm's Go SDK
    (helm_render.py, run by the tools venv's Python, which has the SDK)."""
    python = _tool("python")
    work = tmp_path_factory.mktemp("chart")
    request = {"chart": str(CHART), "out": str(work / "rendered"), "release": RELEASE,
               "namespace": NAMESPACE, "kube_version": None,
               "sets": {k: (str(v) if v else None) for k, v in VALUE_SETS.items()},
               "invalid": [str(p) for p in INVALID_VALUES]}
    (work / "request.json").write_text(json.dumps(request))
    result = _run([python, Path(__file__).with_name("helm_render.py"), work / "request.json"], timeout=120,
                  env=_tool_env())
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    doc["rendered_dir"] = work / "rendered"
    doc["request"] = request
    return doc


@pytest.fixture(params=list(VALUE_SETS))
def value_set(request) -> str:
    """Each value set the chart is rendered with, in turn."""
    return request.param


@pytest.fixture(params=INVALID_VALUES, ids=lambda p: p.stem)
def invalid_values_file(request) -> Path:
    """Each values file of chart/ci/invalid/ in turn; its `# expect:` line names the schema error."""
    return request.param


@pytest.fixture(scope="session")
def objects(chart_result):
    """objects(value_set, kind=None) -> the rendered objects of a value set (of one kind)."""
    def select(value_set, kind=None):
        objs = chart_result["sets"][value_set]["objects"]
        return [o for o in objs if kind is None or o["kind"] == kind]
    return select


@pytest.fixture(scope="session")
def one(objects):
    """one(value_set, kind) -> the only rendered object of that kind (asserts there is exactly one)."""
    def single(value_set, kind):
        found = objects(value_set, kind)
        assert len(found) == 1, f"{value_set}: expected one {kind}, got {len(found)}"
        return found[0]
    return single


# ---------------------------------------------------------------- checkov ------------------------

@pytest.fixture(scope="session")
def checkov_reports(chart_result, tmp_path_factory):
    """Run checkov offline on every target at once (one process each); name -> JSON reports."""
    exe = _tool("checkov")
    targets = dict(CHECKOV_TARGETS)
    for name in VALUE_SETS:  # one run per value set, so no graph check links two sets
        targets[f"chart-{name}"] = ["--directory", chart_result["rendered_dir"] / name,
                                    "--framework", "kubernetes"]
    work = tmp_path_factory.mktemp("checkov")
    procs = {}
    for name, args in targets.items():
        out = (work / f"{name}.json").open("w")
        procs[name] = (out, subprocess.Popen(
            [str(a) for a in (exe, *args, "--output", "json", "--compact", "--skip-download",
                              "--skip-results-upload", "--soft-fail")],
            stdout=out, stderr=subprocess.PIPE, text=True, env=_tool_env(), cwd=work))
    reports = {}
    for name, (out, proc) in procs.items():
        _, err = proc.communicate(timeout=300)
        out.close()
        text = (work / f"{name}.json").read_text().strip()
        assert proc.returncode == 0 and text, f"checkov {name}: exit {proc.returncode}\n{err[-2000:]}"
        doc = json.loads(text)
        reports[name] = doc if isinstance(doc, list) else [doc]
    return reports


def _assert_checkov_clean(reports, min_passed):
    passed = failed = 0
    for rep in reports:
        if "results" not in rep:  # "no files found" summaries
            continue
        failed_checks = rep["results"]["failed_checks"]
        assert failed_checks == [], "\n".join(
            f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})" for c in failed_checks)
        for c in rep["results"]["skipped_checks"]:
            reason = (c["check_result"].get("suppress_comment") or "").strip()
            assert len(reason) > 20, (
                f"skip of {c['check_id']} on {c['resource']} has no real reason: {reason!r}")
        passed += rep["summary"]["passed"]
        failed += rep["summary"]["failed"]
    assert failed == 0 and passed >= min_passed, (passed, failed)


@pytest.fixture(scope="session")
def assert_checkov_clean():
    """assert_checkov_clean(reports, min_passed): no failed check, every skip with a real reason."""
    return _assert_checkov_clean
