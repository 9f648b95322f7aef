"""The service under real gunicorn against slow and idle clients, and keep-alive.

No timings are asserted: each test checks what a client receives (an answer, a 413, a closed connection).
"""
from __future__ import annotations

import http.client
import json
import socket
import time

import pytest
import requests
from service_kit import closed_by_server

pytestmark = pytest.mark.slow


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
