"""Per-request work the worker skips where it cannot matter, with the same results: a small body that came
whole with its request head is read without a deadline (nothing is left to wait for), and metric updates
in multiprocess mode do not ask the kernel for the process id (kept from the start or the fork)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from service import connection

ROOT = Path(__file__).resolve().parents[2]
BODY = b'{"instances": [[0.5]]}'
HEAD = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n").encode()


def _parsed(*chunks: bytes):
    return next(RequestParser(Config(), list(chunks), ("127.0.0.1", 40000)))


def _before(req) -> None:
    connection.before_request(req, limit_for=lambda ct: 1 << 20, body_timeout=5.0)


def test_a_small_body_that_came_with_its_head_is_read_as_it_is():
    req = _parsed(HEAD + BODY)
    _before(req)
    assert not isinstance(req.body, connection.DeadlineBody)   # no deadline armed for bytes already here
    assert req.body.read() == BODY
    connection.after_request(req, discard_max_bytes=1 << 20)   # nothing to discard, nothing to close
    assert not req.must_close


def test_a_pipelined_next_request_does_not_change_the_body():
    req = _parsed(HEAD + BODY + HEAD)
    _before(req)
    assert not isinstance(req.body, connection.DeadlineBody)
    assert req.body.read(10_000) == BODY


def test_a_body_still_to_come_keeps_its_deadline():
    for chunks in ([HEAD, BODY], [HEAD + BODY[:5], BODY[5:]]):
        req = _parsed(*chunks)
        _before(req)
        assert isinstance(req.body, connection.DeadlineBody)
        assert req.body.read() == BODY


def test_a_large_or_chunked_body_keeps_its_deadline_even_when_held():
    big = b"x" * (connection.SMALL_BODY + 1)
    req = _parsed(HEAD.replace(str(len(BODY)).encode(), str(len(big)).encode()) + big)
    _before(req)
    assert isinstance(req.body, connection.DeadlineBody)   # still counted against the in-flight budget
    chunked = (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n")
    req = _parsed(chunked)
    _before(req)
    assert isinstance(req.body, connection.DeadlineBody)


def test_held_is_zero_when_it_cannot_be_told():
    class NoReader:
        pass
    assert connection.held(NoReader()) == 0


_METRICS_CHILD = textwrap.dedent("""
    import os, sys, tempfile
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
    calls = [0]
    real = os.getpid
    def counting():
        calls[0] += 1
        return real()
    os.getpid = counting   # before prometheus_client binds its default process identifier
    sys.path.insert(0, sys.argv[1])
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    from service.prometheus_metrics import Metrics, multiprocess_dir
    m = Metrics("t", "v", "s", [784, 10], 10, multiprocess_dir=multiprocess_dir())
    m.observe("/predict", "200", 0.001)
    calls[0] = 0
    for _ in range(100):
        m.observe("/predict", "200", 0.001)
        m.predicted([{"predicted_class": 3, "confidence": 0.9}], "28x28")
    print("calls", calls[0])
    pid = os.fork()
    if pid == 0:   # a forked worker writes its own file, as gunicorn's do
        for _ in range(5):
            m.observe("/predict", "200", 0.001)
        os._exit(0)
    os.waitpid(pid, 0)
    files = sorted(f for f in os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]) if f.startswith("counter_"))
    print("files", len(files), any(str(pid) in f for f in files))
    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg)
    text = generate_latest(reg).decode()
    line = [x for x in text.splitlines() if x.startswith("mnistlite_http_requests_total{")][0]
    print("total", line.split()[-1])
""")


def test_metric_updates_ask_no_process_id_and_a_fork_still_writes_its_own_file():
    out = subprocess.run([sys.executable, "-c", _METRICS_CHILD, str(ROOT)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split("\n")
    got = dict(line.split(" ", 1) for line in out if line)
    assert int(got["calls"]) == 0, got   # 700 value updates; prometheus_client's default asks at each
    assert got["files"] == "2 True", got   # the parent's file and the child's own
    assert float(got["total"]) == 106.0, got   # 101 in the parent, 5 in the child: none lost
