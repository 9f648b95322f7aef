"""The container contract, minus Docker: the wheel + exactly requirements/runtime.txt in a fresh
venv, the Dockerfile's own ENV/WORKDIR/COPY/CMD replayed on 127.0.0.1, a digit POSTed to /predict.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from mnistlite.cli.proc import free_port

ROOT = Path(__file__).resolve().parents[2]




def _post_png(url: str, png: bytes) -> dict:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_container_contract(small_model_path, tmp_path, dockerfile, final_stage, parse_env, run, digit):
    """The image's runtime, minus Docker: wheel + runtime.txt, then the Dockerfile's ENV/COPY/CMD."""
    final = final_stage
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
    names = {re.sub(r"[-_.]+", "-", re.split(r"==| @ ", line)[0].strip().lower())
             for line in frozen.splitlines() if line.strip() and not line.startswith("#")}
    assert names == {"numpy", "threadpoolctl", "pillow", "pyspng", "falcon", "gunicorn", "prometheus-client",
                     "gevent", "packaging", "greenlet", "zope-event", "zope-interface", "mnistlite"}

    # 2. The final stage's file system, rooted in tmp: image paths -> local paths.
    image_root = tmp_path / "image"
    mapping = {"/opt/venv": str(venv), "/app": str(image_root / "app"), "/tmp": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()

    def local(path: str) -> str:
        for prefix, target in mapping.items():
            if path == prefix or path.startswith(prefix + "/"):
                return target + path[len(prefix):]
        return path

    # The final stage's own COPYs, and those of the rootfs stage that land in /app (gunicorn's config);
    # the rest of the rootfs tree is the venv and Debian's files, which this machine provides.
    froms = {s: a for s, w, a in dockerfile if w == "FROM"}
    rootfs = next(s for s, a in froms.items() if a.endswith(" AS rootfs"))
    into_app = [(w, a) for s, w, a in dockerfile
                if s == rootfs and w == "COPY" and shlex.split(a)[-1].startswith("/app/")]
    for word, arg in into_app + final:
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
    # PORT names another (closed) port: gunicorn and the HEALTHCHECK must both follow MNISTLITE_BIND.
    env.update(PORT=str(free_port()), MNISTLITE_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1")
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
            assert time.monotonic() < deadline, (
                "not ready in 60 s:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.3)
        with urllib.request.urlopen(base + "/liveness", timeout=5) as resp:
            assert resp.status == 200
        # The drawing page ships in the wheel (package data), with its script and style sheet.
        with urllib.request.urlopen(base + "/", timeout=5) as resp:
            html = resp.read().decode()
            assert resp.headers["Content-Type"].startswith("text/html") and '<canvas id="pad"' in html
        assets = re.findall(r'"(/static/[\w.-]+\?v=[0-9a-f]+)"', html)
        assert len(assets) == 4, assets  # pad.js, app.js, style.css, favicon.svg
        for asset in assets:
            with urllib.request.urlopen(base + asset, timeout=5) as resp:
                assert resp.status == 200 and resp.read(), asset
        answer = _post_png(base + "/predict", digit.png.read_bytes())
        assert answer["predicted_class"] == digit.label, answer
        assert {"confidence", "probabilities", "model_version"} <= set(answer)
        # Uploaded PNGs decode through libspng in the image, not only on developer machines.
        probe = "from mnistlite.images.decode import _spng; raise SystemExit(_spng() is None)"
        assert run([str(venv / "bin" / "python"), "-c", probe], env=env, cwd=workdir).returncode == 0
        # The HEALTHCHECK's own command, run as the image would run it.
        health = json.loads(dict(final)["HEALTHCHECK"].split(" CMD ", 1)[1])
        health[0] = shutil.which(health[0], path=env["PATH"])
        assert run(health, env=env, cwd=workdir, timeout=30).returncode == 0
        # The image's venv runs the worker the config names: gevent's, with the service's JSON answer to
        # HTTP gunicorn cannot parse (slow clients cost a greenlet).
        assert "Using worker: service.worker.JSONErrorWorker" in (tmp_path / "server.log").read_text()
        # Nothing was written outside /tmp (the image's root file system is read-only).
        written = [p for p in image_root.rglob("*")
                   if p.is_file() and p.name not in ("gunicorn.conf.py", "model.npz")]
        assert written == [], written
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
