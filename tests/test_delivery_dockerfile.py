"""The Dockerfile, offline: hadolint, checkov, its contract (multi-stage, non-root, no installers left)
and the exact, minimal runtime pins it installs. Tools: see tests/delivery_tools.py.
"""
from __future__ import annotations

import configparser
import json
import re

import pytest

pytest.register_assert_rewrite("delivery_tools")  # keep pytest's assert diffs in the shared helpers
from delivery_tools import (  # noqa: E402
    ROOT, assert_checkov_clean, dockerfile_instructions, final_stage, parse_env, run, tool,
)

pytest_plugins = ["delivery_tools"]  # its session fixtures: one Helm render, one checkov run


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
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    assert set(pins) == {"numpy", "threadpoolctl", "pillow", "pyspng", "falcon", "gunicorn", "prometheus-client",
                          "gevent", "packaging", "greenlet", "zope-event", "zope-interface"}
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    needed = cfg["options"]["install_requires"].split() + cfg["options.extras_require"]["serve"].split()
    for req in filter(None, needed):
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower())
        assert name in pins, f"setup.cfg needs {name} at run time but requirements/runtime.txt lacks it"


def test_checkov_dockerfile(checkov_reports):
    assert_checkov_clean(checkov_reports["dockerfile"], 20)
