"""The service under real gunicorn on 127.0.0.1: start-up, a multipart /predict, merged metrics, limits,
stop."""
from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(gunicorn, small_model_path):
    return gunicorn(small_model_path)


def digit_png(mnist_uint8, i=0):
    _, (x, y) = mnist_uint8
    buf = io.BytesIO()
    Image.fromarray(255 - x[i]).save(buf, format="PNG")
    return buf.getvalue(), int(y[i])


def test_multipart_predict_under_gunicorn(server, mnist_uint8):
    port = server.port
    data, _label = digit_png(mnist_uint8)
    boundary = "gunicorn-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    status, headers, text = request(port, "POST", "/predict", body,
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                     "X-Request-ID": "gunicorn-1"})
    assert status == 200, text
    answer = json.loads(text)
    assert answer["predicted_class"] in range(10) and len(answer["probabilities"]) == 10
    assert headers["x-request-id"] == "gunicorn-1"


def test_metrics_merge_workers(server, mnist_uint8):
    port = server.port
    data, label = digit_png(mnist_uint8, 1)
    for _ in range(6):  # new connection each time: both workers most likely serve some
        assert request(port, "POST", "/predict", data, {"Content-Type": "image/png"})[0] == 200
    assert request(port, "GET", "/metrics")[0] == 404  # never on the public port
    status, headers, text = request(server.metrics_port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    lines = text.decode().splitlines()
    ok = [line for line in lines
          if line.startswith('mnistlite_http_requests_total{route="/predict",status="200"}')]
    assert ok and float(ok[0].rsplit(" ", 1)[1]) >= 6
    assert any(line.startswith("mnistlite_model_info{") and line.endswith(" 1.0") for line in lines)


def test_the_full_model_description_is_on_the_metrics_port_only(server):
    status, headers, public = request(server.port, "GET", "/v1/model")
    assert status == 200 and headers["x-content-type-options"] == "nosniff"
    public = json.loads(public)
    status, _, full = request(server.metrics_port, "GET", "/v1/model")
    full = json.loads(full)
    assert status == 200 and full["sha256"] == public["sha256"]
    assert "config" in full and "created" in full
    assert not {"config", "created", "activation", "mnistlite_version"} & set(public)
    assert request(server.metrics_port, "GET", "/liveness")[0] == 404  # the admin port serves only these
    assert request(server.metrics_port, "POST", "/predict", b"x", {"Content-Type": "image/png"})[0] == 404


def test_no_peer_may_set_forwarded_scheme_headers(server):
    # Trusted, these two disagree about the scheme and gunicorn refuses the request (400); from a peer
    # not trusted with forwarded headers (127.0.0.1 here, trusted by gunicorn's default) they are ignored.
    status, _, text = request(server.port, "GET", "/readiness",
                              headers={"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"})
    assert status == 200, text


def test_declared_oversize_body_is_refused_unread(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        # Declare 50 MB, send none of it: the answer must come without waiting for the body.
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Content-Length: 50000000\r\n\r\n")
        head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]


def test_huge_image_is_413(server):
    port = server.port
    buf = io.BytesIO()
    Image.fromarray(np.full((5000, 5000), 255, np.uint8)).save(buf, format="PNG")
    status, _, text = request(port, "POST", "/predict", buf.getvalue(), {"Content-Type": "image/png"})
    assert status == 413, text


@pytest.mark.parametrize("case", ["corrupt", "missing", "unset"])
def test_bad_model_stops_start_up_with_a_reason(gunicorn, tmp_path, case):
    bad = tmp_path / "bad.npz"
    if case == "corrupt":
        bad.write_bytes(b"not a model at all")
    server = gunicorn("" if case == "unset" else bad, wait=False)
    assert server.proc.wait(timeout=60) != 0
    expected = {"corrupt": "not a readable .npz", "missing": "no such model file",
                "unset": "MNISTLITE_MODEL is not set"}
    out = server.output()
    assert expected[case] in out, out[-500:]
    assert "Traceback" not in out


def test_sigterm_right_after_start_stops_every_worker(gunicorn, small_model_path):
    """A stop that reaches a worker still booting (the gevent worker patches before it installs its signal
    handlers) must end it, not be lost: with a 300 s graceful timeout a lost SIGTERM would hang the stop."""
    for _ in range(3):
        server = gunicorn(small_model_path, wait=False, GUNICORN_GRACEFUL_TIMEOUT="300")
        try:
            while request_or_none(server.port) != 200:
                assert server.proc.poll() is None, server.output()[-2000:]
                time.sleep(0.02)
            server.proc.send_signal(signal.SIGTERM)
            code = server.proc.wait(timeout=60)
        finally:
            server.stop(5)
        assert code == 0, server.output()[-2000:]


def request_or_none(port):
    try:
        return request(port, "GET", "/readiness")[0]
    except OSError:
        return None
