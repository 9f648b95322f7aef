"""Per-request system calls the worker no longer makes, with the same results: request ids from a pool
of os.urandom bytes (fresh in a forked child), the local port asked once per connection, and an answer
sent by one plain send before gevent's sendall (which asks for the send buffer size on every call)."""
from __future__ import annotations

import os
import re

from service import accesslog, admin, onewrite


def test_request_ids_are_32_hex_digits_and_unique():
    ids = [accesslog.new_id() for _ in range(1000)]   # several pools
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_draws_its_own_ids():
    accesslog.new_id()   # the parent holds a pool
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, " ".join(accesslog.new_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 4096).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    parent = [accesslog.new_id() for _ in range(300)]
    assert len(child) == 5 and not set(child) & set(parent)


class FakeSock:
    def __init__(self, name, *, fail=False):
        self.name, self.fail, self.asked, self.sent = name, fail, 0, []

    def getsockname(self):
        self.asked += 1
        if self.fail:
            raise OSError("gone")
        return self.name

    def send(self, data):
        n = min(len(data), 7)   # a short send: the rest goes through sendall
        self.sent.append(bytes(data[:n]))
        return n

    def sendall(self, data):
        self.sent.append(bytes(data))


def test_the_local_port_is_asked_once_per_connection():
    one, two = FakeSock(("127.0.0.1", 9100)), FakeSock(("127.0.0.1", 8000))
    for _ in range(3):
        assert admin._local_port({"gunicorn.socket": one}) == 9100
        assert admin._local_port({"gunicorn.socket": two}) == 8000
    assert one.asked == two.asked == 1
    bad = FakeSock(None, fail=True)
    assert admin._local_port({"gunicorn.socket": bad}) is None
    assert admin._local_port({"gunicorn.socket": bad}) is None and bad.asked == 2   # errors are not kept
    assert admin._local_port({}) is None
    assert admin._local_port({"gunicorn.socket": FakeSock("/tmp/unix.sock")}) is None   # a Unix socket


def test_send_all_sends_every_byte_in_order():
    sock = FakeSock(None)
    data = bytes(range(256)) * 3
    onewrite.send_all(sock, data)
    assert b"".join(sock.sent) == data and len(sock.sent[0]) == 7


def test_request_ids_stay_unique_across_threads():
    # gthread workers call new_id from several threads: none may be handed the same id twice.
    import sys
    import threading

    ids = accesslog._Ids()
    got = [[] for _ in range(8)]

    def take(out):
        for _ in range(20000):
            out.append(ids())

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # switch threads as often as the interpreter allows
    try:
        threads = [threading.Thread(target=take, args=(out,)) for out in got]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    every = [i for out in got for i in out]
    assert len(every) == 160000 and len(set(every)) == len(every)
