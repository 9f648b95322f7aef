"""The Dockerfile, offline: hadolint, checkov, its contract (multi-stage, non-root, no installers left)
and the exact, minimal runtime pins it installs. Tools and fixtures: tests/delivery/conftest.py.
"""
from __future__ import annotations

import configparser
import http.server
import json
import os
import re
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_hadolint_dockerfile_clean(run, tool):
    result = run([tool("hadolint"), "--no-color", "--failure-threshold", "style", ROOT / "Dockerfile"])
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_contract(dockerfile, final_stage, parse_env):
    ins = dockerfile
    # The base: Debian trixie-slim pinned by digest; the final stage's files come from it (through `python`).
    global_args = dict(a.split("=", 1) for s, w, a in ins if s == -1 and w == "ARG" and "=" in a)
    assert re.fullmatch(r"trixie-slim@sha256:[0-9a-f]{64}", global_args["BASE_TAG"]), global_args["BASE_TAG"]
    froms = {s: a for s, w, a in ins if w == "FROM"}
    assert froms[0] == "debian:${BASE_TAG} AS python"
    # Distroless: the final stage starts from nothing and takes one tree, gathered by a script (no
    # inline program in the Dockerfile), then the model; it runs nothing itself (no RUN: no shell).
    assert froms[max(froms)] == "scratch AS runtime" and len(froms) >= 4, "multi-stage build expected"
    rootfs = next(s for s, a in froms.items() if a.endswith(" AS rootfs"))
    assert froms[rootfs] == "builder AS rootfs"
    assert any(w == "COPY" and a.startswith("tools/image/rootfs.py ") for s, w, a in ins if s == rootfs)
    assert any(w == "RUN" and "rootfs.py /rootfs" in a for s, w, a in ins if s == rootfs)
    assert not any(w == "ARG" and len(a) > 120 for _, w, a in ins), "a program in an ARG: put it in a file"
    assert not any(" -c " in a for _, w, a in ins if w in ("RUN", "HEALTHCHECK", "CMD")), "inline program"
    final = final_stage
    words = [w for w, _ in final]
    args = {w: a for w, a in final}
    assert "RUN" not in words and "SHELL" not in words
    assert args["USER"] in ("10001", "10001:10001")
    assert args["EXPOSE"].split() == ["8000"]
    probe = json.loads(args["HEALTHCHECK"].split(" CMD ", 1)[1])  # exec form: no shell to run it
    assert probe == ["python", "-m", "service.healthcheck"]
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
    for key in ("title", "source", "version", "revision", "created", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels
    copies = [a for w, a in final if w == "COPY"]
    assert copies[0] == "--from=rootfs /rootfs /"
    assert "model/model.npz /app/model/model.npz" in copies
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY"))
    # No installers left: the builder strips its venv's pip; Debian's python3 comes without pip
    # (python3-pip) and ensurepip (python3-venv), which only the builder installs.
    runs = {s: " ".join(a for t, w, a in ins if t == s and w == "RUN") for s in froms}
    builder = next(s for s, a in froms.items() if a.endswith(" AS builder"))
    assert "-r requirements/runtime.txt" in runs[builder]
    assert "pip uninstall --yes pip setuptools wheel" in runs[builder]
    installs = {s: [i.split() for i in re.findall(r"apt-get install ([^&]+)", r)] for s, r in runs.items()}
    assert installs[0] == [["-y", "--no-install-recommends", "python3"]], installs[0]
    assert installs.get(max(froms), []) == [], "the runtime stage installs nothing"
    assert all("--no-install-recommends" in i for found in installs.values() for i in found)
    # The CA bundle for pip only ever arrives as a BuildKit secret, never COPY'd into a layer.
    assert "--mount=type=secret,id=ca" in runs[builder] and "PIP_CERT=/run/secrets/ca" in runs[builder]
    assert not any("ca-certificates.crt" in a or "/run/secrets" in a for w, a in final if w != "RUN")
    ignore = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert ignore[0] == "*", ".dockerignore must be an allow-list"
    assert {"!model/model.npz", "!requirements/runtime.txt", "!mnistlite/", "!service/",
            "!tools/image/rootfs.py"} <= set(ignore)


@pytest.mark.parametrize("env, served_on", [
    ({"MNISTLITE_BIND": "127.0.0.1:{port}", "PORT": "1"}, "127.0.0.1"),  # the bind wins over PORT
    ({"MNISTLITE_BIND": "0.0.0.0:{port}"}, "127.0.0.1"),                 # a wildcard is probed on loopback
    ({"PORT": "{port}"}, "127.0.0.1"),                                   # no bind: 0.0.0.0:$PORT
])
def test_healthcheck_probes_where_gunicorn_listens(final_stage, run, env, served_on):
    """The HEALTHCHECK command itself, against a real HTTP server: 200 -> exit 0, refused -> non-zero.

    It follows service/gunicorn.conf.py's bind: MNISTLITE_BIND, else 0.0.0.0:$PORT."""
    hits = []

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200 if self.path == "/readiness" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    probe = json.loads(dict(final_stage)["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert probe[0] == "python"
    with http.server.ThreadingHTTPServer((served_on, 0), Ready) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        base_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
        filled = {k: v.format(port=port) for k, v in env.items()}
        ok = run([sys.executable, *probe[1:]], env={**base_env, **filled}, timeout=30)
        assert ok.returncode == 0 and hits == ["/readiness"], (ok.stderr[-2000:], hits)
        server.shutdown()
    # Nothing listens there any more: the probe must fail (connection refused), not pass.
    refused = run([sys.executable, *probe[1:]], env={**base_env, **filled}, timeout=30)
    assert refused.returncode != 0 and "Connection refused" in refused.stderr, refused.stderr[-2000:]


def test_runtime_requirements_pinned_and_minimal():
    pins = {}
    for line in (ROOT / "requirements" / "runtime.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not pinned exactly: {line}"
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    assert set(pins) == {"numpy", "threadpoolctl", "pillow", "pyspng", "falcon", "gunicorn",
                         "prometheus-client", "gevent", "packaging", "greenlet", "zope-event",
                         "zope-interface"}
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    needed = cfg["options"]["install_requires"].split() + cfg["options.extras_require"]["serve"].split()
    for req in filter(None, needed):
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower())
        assert name in pins, f"setup.cfg needs {name} at run time but requirements/runtime.txt lacks it"


def test_checkov_dockerfile(checkov_reports, assert_checkov_clean):
    assert_checkov_clean(checkov_reports["dockerfile"], 20)
