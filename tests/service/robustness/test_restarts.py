"""The service under real gunicorn through reloads (SIGHUP), drains (SIGTERM) and killed workers.

No timings are asserted: each test checks what a client receives (an answer, a 413, a closed connection).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
import requests
from service_kit import closed_by_server, start

pytestmark = pytest.mark.slow


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
