"""A real gunicorn shares its workers fairly: kept-alive connections take turns within a worker, and
connections spread evenly over the workers (service/worker.py, service/handoff.py)."""
import re
import socket
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PIPELINED = 300


def _answers(data: bytes) -> int:
    return data.count(b"HTTP/1.1 200")


def _one_answer(sock) -> bytes:
    """Read one whole HTTP answer (head and Content-Length body) from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before an answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200"), head
    return head


def test_a_client_with_requests_waiting_does_not_hold_its_worker(gunicorn, small_model_path):
    """One worker; client A pipelines many requests, so its next one is always waiting; B's one request,
    sent once A is being served, is answered after a few of A's, not after all of them."""
    server = gunicorn(small_model_path, WEB_CONCURRENCY="1", MNISTLITE_KEEPALIVE_REQUESTS="0")
    get = f"GET /readiness HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as b, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as a:
        b.sendall(get)  # B's connection is accepted and idle in the worker before A's burst
        _one_answer(b)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        a.sendall(get * PIPELINED)
        got = a.recv(65536)  # the worker is serving A's burst now
        b.sendall(get)
        _one_answer(b)
        a.setblocking(False)
        try:
            while True:
                got += a.recv(1 << 20)
        except BlockingIOError:
            pass
    # Before: every one of A's requests was served before B's (A's greenlet never returned to the loop).
    assert _answers(got) < PIPELINED // 2, f"A had {_answers(got)} of {PIPELINED} answers when B got its one"


def _connections_per_worker(server) -> list:
    """Established connections to the public port held by each worker (from /proc)."""
    port_hex = f":{server.port:04X} "
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if port_hex in f[1] + " " and f[3] == "01":  # local address on our port, ESTABLISHED
                inodes.add(f[9])
    counts = []
    for pid in server.workers():
        fds = Path(f"/proc/{pid}/fd")
        links = []
        for fd in fds.iterdir():
            try:
                links.append(fd.readlink().name)
            except OSError:
                pass
        counts.append(sum(1 for link in links if (m := re.fullmatch(r"socket:\[(\d+)\]", link))
                          and m.group(1) in inodes))
    return sorted(counts)


def test_connections_spread_evenly_over_the_workers(gunicorn, small_model_path):
    """24 connections opened at once: the workers end up holding shares within 2 of each other, by
    accepting evenly or by closing (gracefully, "Connection: close") what one holds above its share."""
    server = gunicorn(small_model_path, MNISTLITE_KEEPALIVE_REQUESTS="0")
    get = f"GET /readiness HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    conns = []
    try:
        for _ in range(24):  # opened together, as a load generator opens its connections
            conns.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        for _ in range(3):
            for c in conns:
                c.sendall(get)
            closing = [b"connection: close" in _one_answer(c).lower() for c in conns]
            for c, gone in zip(conns, closing, strict=True):
                if gone:
                    c.close()
            conns = [c for c, gone in zip(conns, closing, strict=True) if not gone]
        time.sleep(0.2)
        counts = _connections_per_worker(server)
        assert sum(counts) == len(conns) >= 16 and counts[1] - counts[0] <= 2, counts
    finally:
        for c in conns:
            c.close()
