"""The service under real gunicorn against slow clients, oversized bodies, keep-alive, reloads, drains and
kills.

No timings are asserted: each test checks what a client receives (an answer, a 413, a closed connection).
"""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import requests

BIG = 64 << 20  # bodies this large must still get a readable 413

pytestmark = pytest.mark.slow


def start(gunicorn, model_path, **env):
    """The service under gunicorn without its access log (these tests send thousands of requests)."""
    return gunicorn(model_path, MNISTLITE_ACCESS_LOG="0", **env)


@pytest.fixture(scope="module")
def server(gunicorn, small_model_path) -> int:
    """The port of a service with short deadlines, so that the cut-offs below happen within a test's
    patience."""
    return start(gunicorn, small_model_path, MNISTLITE_IDLE_TIMEOUT="1", MNISTLITE_BODY_TIMEOUT="2").port


@pytest.fixture(scope="module")
def png(mnist_uint8):
    import io

    from PIL import Image

    _, (x, _y) = mnist_uint8
    buf = io.BytesIO()
    Image.fromarray(255 - x[0]).save(buf, format="PNG")
    return buf.getvalue()


def closed_by_server(s: socket.socket, patience: float = 15) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    s.settimeout(patience)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail(f"the server kept the connection open; it sent {data[:200]!r}")
    return data


def read_response(s: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body) from a socket."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"(?i)content-length: *(\d+)", data.partition(b"\r\n\r\n")[0]).group(1)):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# --- slow and idle clients ---------------------------------------------------------------------------

def test_idle_connection_is_closed(server):
    with socket.create_connection(("127.0.0.1", server)) as s:
        assert closed_by_server(s) == b""


def test_trickled_request_head_is_cut_off(server):
    with socket.create_connection(("127.0.0.1", server)) as s:
        stop_at = time.monotonic() + 15
        head = b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
        try:
            for b in head:  # 4 bytes a second: never a whole head
                s.send(bytes([b]))
                time.sleep(0.25)
                assert time.monotonic() < stop_at, "the trickling client was never cut off"
        except OSError:
            pass  # the server closed on us: what should happen
        else:
            pytest.fail("the whole trickled head was accepted")


def test_trickled_body_gets_408_and_close(server):
    with socket.create_connection(("127.0.0.1", server)) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Content-Length: 1000\r\n\r\n")
        s.send(b"\x89PNG")  # then nothing more
        answer = closed_by_server(s)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"connection: close" in head.lower()
    assert "did not arrive" in json.loads(body)["description"]


def test_normal_client_is_served_while_slow_clients_hold_connections(server, png):
    slow = [socket.create_connection(("127.0.0.1", server)) for _ in range(16)]
    try:
        for s in slow:
            s.send(b"POST /predict HTTP/1.1\r\nHo")
        for _ in range(5):
            r = requests.post(f"http://127.0.0.1:{server}/predict",
                              files={"file": ("d.png", png, "image/png")}, timeout=10)
            assert r.status_code == 200 and r.json()["predicted_class"] in range(10)
    finally:
        for s in slow:
            s.close()


def test_keep_alive_reuses_the_connection(server, png):
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        ports = []
        for _ in range(3):
            conn.request("POST", "/predict", body=png, headers={"Content-Type": "image/png"})
            r = conn.getresponse()
            assert r.status == 200 and r.getheader("Connection", "").lower() != "close"
            r.read()
            ports.append(conn.sock.getsockname()[1])  # a new connection would have a new local port
        assert len(set(ports)) == 1
    finally:
        conn.close()
    with requests.Session() as session:
        local = []
        for _ in range(3):
            r = session.post(f"http://127.0.0.1:{server}/predict",
                             files={"file": ("d.png", png, "image/png")}, timeout=10, stream=True)
            local.append(r.raw.connection.sock.getsockname()[1])
            assert r.status_code == 200 and r.json()["predicted_class"] in range(10)
        assert len(set(local)) == 1


# --- oversized bodies --------------------------------------------------------------------------------

def _raw(port, head: bytes, chunks) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        for c in chunks:
            s.sendall(c)
        return closed_by_server(s, 30) if b"Connection: close" in head else s.recv(65536)


def _assert_json_413(status: int, body: bytes):
    assert status == 413, body[:300]
    assert "limit" in json.loads(body)["description"]


@pytest.mark.parametrize("client", ["urllib", "requests-multipart", "requests-chunked", "raw-length",
                                    "raw-chunked", "curl-F"])
def test_64_mib_body_gets_a_readable_413(server, client, tmp_path):
    url = f"http://127.0.0.1:{server}/predict"
    big = bytes(BIG)
    for _ in range(3):  # a reset is a race: one lucky answer proves little
        if client == "urllib":
            with pytest.raises(urllib.error.HTTPError) as e:
                req = urllib.request.Request(url, data=big, headers={"Content-Type": "image/png"})
                urllib.request.urlopen(req, timeout=30)
            _assert_json_413(e.value.code, e.value.read())
        elif client == "requests-multipart":
            r = requests.post(url, files={"file": ("photo.png", big, "image/png")}, timeout=30)
            _assert_json_413(r.status_code, r.content)
        elif client == "requests-chunked":
            r = requests.post(url, data=(big[i:i + (1 << 20)] for i in range(0, BIG, 1 << 20)),
                              headers={"Content-Type": "image/png"}, timeout=30)
            _assert_json_413(r.status_code, r.content)
        elif client == "raw-length":
            head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nConnection: close\r\n"
                    f"Content-Length: {BIG}\r\n\r\n").encode()
            answer = _raw(server, head, [big])
            _assert_json_413(int(answer.split()[1]), answer.partition(b"\r\n\r\n")[2])
        elif client == "raw-chunked":
            head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nConnection: close\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n" % (1 << 20) + bytes(1 << 20) + b"\r\n"
            answer = _raw(server, head, [chunk] * 64 + [b"0\r\n\r\n"])
            _assert_json_413(int(answer.split()[1]), answer.partition(b"\r\n\r\n")[2])
        else:
            if not shutil.which("curl"):
                pytest.skip("curl is not installed")
            photo = tmp_path / "photo.jpg"
            photo.write_bytes(big)
            out = subprocess.run(["curl", "-sS", "-v", "-F", f"file=@{photo}", url], capture_output=True,
                                 timeout=60)
            statuses = [line.split()[2] for line in out.stderr.decode().splitlines()
                        if line.startswith("< HTTP/")]
            assert b"Expect: 100-continue" in out.stderr  # what makes this case special
            assert statuses == ["413"], out.stderr.decode()[-1000:]  # the 413 itself, no "100 Continue" first
            _assert_json_413(413, out.stdout)


def test_expect_100_continue_over_the_limit_gets_413_not_100(server):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % BIG)
        answer = closed_by_server(s)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"100 Continue" not in answer


def test_expect_100_continue_under_the_limit_still_gets_100(server, png):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(png))
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(png)
        assert read_response(s).startswith(b"HTTP/1.1 200")


def test_a_phone_photo_sized_upload_is_accepted(server):
    """~12 MiB (a JPEG straight from a phone) is under the default body limit: not a 413.

    An uncompressed BMP: its decoding fits the decode budget, so only the body limit could refuse it
    (a 12 MiB PNG or JPEG is refused by the budget: its CRC, inflating or Huffman decoding is the cost).
    """
    import io

    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="BMP")
    assert 11 << 20 < len(buf.getvalue()) < 13 << 20
    r = requests.post(f"http://127.0.0.1:{server}/predict",
                      files={"file": ("photo.bmp", buf.getvalue(), "image/bmp")}, timeout=60)
    assert r.status_code == 200, r.text[:300]  # noise gets an answer plus warnings


def test_large_uploads_wait_for_a_slot_and_small_requests_do_not(gunicorn, small_model_path, png):
    """One worker, one upload slot, a large body stalled in it: small requests are still served, and the
    large upload queued behind it gets a readable answer (served once the staller is cut off, or 408)."""
    srv = start(gunicorn, small_model_path, WEB_CONCURRENCY="1", MNISTLITE_UPLOAD_SLOTS="1",
                MNISTLITE_BODY_TIMEOUT="2")
    port = srv.port
    try:
        size = 4 << 20
        head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: %d\r\n\r\n" % size)
        with socket.create_connection(("127.0.0.1", port), timeout=15) as holder, \
                socket.create_connection(("127.0.0.1", port), timeout=15) as waiter:
            holder.sendall(head + bytes(1 << 20))  # takes the slot, then stalls
            waiter.sendall(head)
            r = requests.post(f"http://127.0.0.1:{port}/predict", data=png,
                              headers={"Content-Type": "image/png"}, timeout=10)
            assert r.status_code == 200
            waiter.sendall(bytes(size))
            answer = read_response(waiter)
            assert answer.split()[1] in (b"400", b"503"), answer[:300]  # zeros are no image; or "busy"
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["description"]
            assert closed_by_server(holder).startswith(b"HTTP/1.1 408")  # the staller itself is cut off
    finally:
        srv.stop()


def test_upload_slot_is_waited_for_and_released():
    """In-process: a large body reads only with a slot; the next one waits, and gets it once released."""
    import io

    from gevent.lock import BoundedSemaphore

    from service.connection import DeadlineBody

    slots = BoundedSemaphore(1)
    first = DeadlineBody(io.BytesIO(b"a" * 10), time.monotonic() + 0.5, 0.5, length=10, slots=slots)
    second = DeadlineBody(io.BytesIO(b"b" * 10), time.monotonic() + 0.5, 0.5, length=10, slots=slots)
    assert first.read(100) == b"a" * 10 and first.finished and first.holding
    with pytest.raises(TimeoutError, match="too many large uploads"):
        second.read(100)  # the slot is taken for as long as it waits
    assert not second.timed_out  # waiting for a slot is not the client's fault: its body is discarded later
    first.release()
    third = DeadlineBody(io.BytesIO(b"c" * 10), time.monotonic() + 5, 5, length=10, slots=slots)
    assert third.read(100) == b"c" * 10 and third.holding
    third.release()
    assert slots.acquire(blocking=False)  # every holder released: the slot is free again


# --- reload, drain, kill -----------------------------------------------------------------------------

def _load(port, png, stop_event, results, keep_alive: bool):
    """Send /predict until stop_event; record each outcome (status or exception name)."""
    session = requests.Session() if keep_alive else requests
    while not stop_event.is_set():
        try:
            r = session.post(f"http://127.0.0.1:{port}/predict", data=png,
                             headers={"Content-Type": "image/png"}, timeout=15)
            results.append(r.status_code)
        except requests.RequestException as e:
            results.append(type(e).__name__)


def test_reload_under_load_loses_nothing(gunicorn, small_model_path, png):
    srv = start(gunicorn, small_model_path)
    proc, port = srv.proc, srv.port
    try:
        before = srv.workers()
        stop_event, results = threading.Event(), []
        threads = [threading.Thread(target=_load, args=(port, png, stop_event, results, i % 2 == 0))
                   for i in range(4)]
        for t in threads:
            t.start()
        while len(results) < 50:
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while not (srv.workers() and srv.workers().isdisjoint(before)) and time.monotonic() < deadline:
            time.sleep(0.1)
        sent_after = len(results)
        while len(results) < sent_after + 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_event.set()
        for t in threads:
            t.join(30)
        assert srv.workers().isdisjoint(before), "the reload did not replace the workers"
        assert len(results) >= sent_after + 50
        assert set(results) == {200}, {r: results.count(r) for r in set(results)}
    finally:
        srv.stop()


def test_sigterm_finishes_the_request_it_accepted(gunicorn, small_model_path, png):
    srv = start(gunicorn, small_model_path)
    proc, port = srv.proc, srv.port
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(png) + png[:10])
            time.sleep(0.3)  # the worker has the request and waits for the rest of its body
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            s.sendall(png[10:])
            answer = closed_by_server(s)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["predicted_class"] in range(10)
        assert proc.wait(30) == 0
    finally:
        srv.stop()


def test_killed_worker_is_replaced(gunicorn, small_model_path, png):
    srv = start(gunicorn, small_model_path)
    port = srv.port
    try:
        victim = min(srv.workers())
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not (len(srv.workers()) == 2 and victim not in srv.workers()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(srv.workers()) == 2 and victim not in srv.workers()
        for _ in range(6):  # fresh connections land on both workers, the new one included
            r = requests.post(f"http://127.0.0.1:{port}/predict", data=png,
                              headers={"Content-Type": "image/png"}, timeout=10)
            assert r.status_code == 200
    finally:
        srv.stop()
