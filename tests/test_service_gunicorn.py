"""The service under real gunicorn on 127.0.0.1: start-up, a multipart /predict, merged metrics, limits, stop."""
from __future__ import annotations

import http.client
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model_path, port: int, **env) -> subprocess.Popen:
    environ = {**os.environ, "MNISTLITE_MODEL": str(model_path), "MNISTLITE_BIND": f"127.0.0.1:{port}",
               "WEB_CONCURRENCY": "2", **env}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.Popen([str(GUNICORN), "-c", "service/gunicorn.conf.py", "service.wsgi:app"], cwd=ROOT,
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(small_model_path):
    port = free_port()
    proc = start(small_model_path, port)
    deadline = time.monotonic() + 30
    while True:
        try:
            if request(port, "GET", "/readiness")[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"gunicorn did not become ready (exit {proc.returncode}): {err.decode()[-2000:]}")
        time.sleep(0.05)
    yield port, proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def digit_png(mnist_uint8, i=0):
    _, (x, y) = mnist_uint8
    buf = io.BytesIO()
    Image.fromarray(255 - x[i]).save(buf, format="PNG")
    return buf.getvalue(), int(y[i])


def test_multipart_predict_under_gunicorn(server, mnist_uint8):
    port, _ = server
    data, _label = digit_png(mnist_uint8)
    boundary = "gunicorn-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    status, headers, text = request(port, "POST", "/predict", body,
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                     "X-Request-ID": "gunicorn-1"})
    assert status == 200, text
    import json

    answer = json.loads(text)
    assert answer["predicted_class"] in range(10) and len(answer["probabilities"]) == 10
    assert headers["x-request-id"] == "gunicorn-1"


def test_metrics_merge_workers(server, mnist_uint8):
    port, _ = server
    data, label = digit_png(mnist_uint8, 1)
    for _ in range(6):  # new connection each time: both workers most likely serve some
        assert request(port, "POST", "/predict", data, {"Content-Type": "image/png"})[0] == 200
    status, headers, text = request(port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    lines = text.decode().splitlines()
    predict_ok = [l for l in lines if l.startswith('mnistlite_http_requests_total{route="/predict",status="200"}')]
    assert predict_ok and float(predict_ok[0].rsplit(" ", 1)[1]) >= 6
    assert any(l.startswith("mnistlite_model_info{") and l.endswith(" 1.0") for l in lines)


def test_declared_oversize_body_is_refused_unread(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # Declare 50 MB, send none of it: the answer must come without waiting for the body.
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 50000000\r\n\r\n")
        head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]


def test_huge_image_is_413(server):
    port, _ = server
    buf = io.BytesIO()
    Image.fromarray(np.full((5000, 5000), 255, np.uint8)).save(buf, format="PNG")
    status, _, text = request(port, "POST", "/predict", buf.getvalue(), {"Content-Type": "image/png"})
    assert status == 413, text


@pytest.mark.parametrize("case", ["corrupt", "missing", "unset"])
def test_bad_model_stops_start_up_with_a_reason(tmp_path, case):
    bad = tmp_path / "bad.npz"
    if case == "corrupt":
        bad.write_bytes(b"not a model at all")
    proc = start("" if case == "unset" else bad, free_port())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    expected = {"corrupt": b"not a readable .npz", "missing": b"no such model file", "unset": b"MNISTLITE_MODEL is not set"}
    assert expected[case] in err, err[-500:]
    assert b"Traceback" not in err


def test_sigterm_right_after_start_stops_every_worker(small_model_path):
    """A stop that reaches a worker still booting (the gevent worker patches before it installs its signal
    handlers) must end it, not be lost: with a 300 s graceful timeout a lost SIGTERM would hang the stop."""
    for _ in range(3):
        port = free_port()
        proc = start(small_model_path, port, GUNICORN_GRACEFUL_TIMEOUT="300")
        try:
            while request_or_none(port) != 200:
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err.decode()[-2000:]


def request_or_none(port):
    try:
        return request(port, "GET", "/readiness")[0]
    except OSError:
        return None
