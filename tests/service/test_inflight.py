"""The in-flight body budget (service/inflight.py, service/connection.py): in-process with gevent, and one
real gunicorn whose budget is smaller than the bodies stalled in it.

No timings are asserted: each test checks what is granted, held, answered and given back.
"""
from __future__ import annotations

import io
import re
import socket
import time

import pytest
from gevent.lock import BoundedSemaphore

from service.connection import DeadlineBody
from service.errors import ServerBusy
from service.inflight import Budget


def read_response(s: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body)."""
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        if sep and length and len(rest) >= int(length.group(1)):
            return data
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def body(data: bytes, budget=None, slots=None, seconds: float = 0.3) -> DeadlineBody:
    return DeadlineBody(io.BytesIO(data), time.monotonic() + seconds, seconds, length=len(data),
                        slots=slots, budget=budget)


def test_a_body_holds_what_it_read_until_released():
    budget = Budget(1 << 20)
    b = body(b"x" * 300_000, budget)
    assert b.read() == b"x" * 300_000
    assert budget.used == 300_000 == b.taken  # held while the app works on it
    b.release()
    assert budget.used == 0
    b.release()  # twice is harmless
    assert budget.used == 0


def test_bodies_past_the_budget_wait_then_get_server_busy():
    budget = Budget(500_000)
    first, second = body(b"a" * 400_000, budget), body(b"b" * 400_000, budget)
    assert len(first.read()) == 400_000
    with pytest.raises(ServerBusy, match="too many request bodies"):
        second.read()
    assert not second.timed_out  # not the client's fault: its body is discarded after the answer
    second.release()
    assert budget.used == 400_000  # the refused body gave back the piece it was reading
    first.release()
    third = body(b"c" * 400_000, budget)
    assert third.read() == b"c" * 400_000  # room again once the first is done


def test_the_budget_is_counted_across_bodies_whatever_their_size():
    budget = Budget(1 << 20)
    bodies = [body(b"z" * 100_000, budget) for _ in range(10)]
    for b in bodies:
        assert len(b.read(100_000)) == 100_000
    assert budget.used == 1_000_000
    with pytest.raises(ServerBusy):
        body(b"y" * 100_000, budget).read()
    for b in bodies:
        b.release()
    assert budget.used == 0


def test_a_released_body_never_takes_its_slot_or_budget_again():
    """gunicorn reads what is left of a body before a kept-alive connection's next request: that read,
    after the request ended, must not take the upload slot (it would never be given back)."""
    slots, budget = BoundedSemaphore(1), Budget(1 << 20)
    b = body(b"q" * 10, budget, slots)
    assert b.read(100) == b"q" * 10
    b.release()
    assert b.read(100) == b""  # the drain
    assert slots.acquire(blocking=False), "the upload slot leaked"
    assert budget.used == 0


def test_trim_frees_the_cycles_a_burst_left_behind():
    # A cut-off connection leaves cycles (an exception, its traceback's frames, the objects they hold);
    # the worker's heap is frozen and its full collections rare, so the trim after a burst collects.
    import gc
    import weakref

    from service import inflight

    class Held:
        pass

    held = Held()
    held.cycle, held.body = held, bytearray(1 << 20)
    ref = weakref.ref(held)
    enabled = gc.isenabled()
    gc.disable()   # no automatic collection may free it first
    try:
        del held
        assert ref() is not None
        inflight.trim()
        assert ref() is None
    finally:
        if enabled:
            gc.enable()


def test_a_worker_answers_busy_bodies_and_keeps_serving(gunicorn, small_model_path):
    """One worker, a budget of 2 MiB and bodies limited to 1 MiB: four stalled bodies of 900 KB fill it;
    a fifth gets a readable 503 (after BUDGET_WAIT, before the stallers' deadline), a small request is
    still served, and once the stallers go the budget is free again (kept-alive chunked requests
    included, which once leaked the upload slot)."""
    srv = gunicorn(small_model_path, MNISTLITE_ACCESS_LOG="0", WEB_CONCURRENCY="1",
                   MNISTLITE_INFLIGHT_BYTES=str(2 << 20), MNISTLITE_MAX_BODY_BYTES=str(1 << 20),
                   MNISTLITE_MAX_JSON_BYTES=str(1 << 20), MNISTLITE_BODY_TIMEOUT="8")
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: %d\r\n\r\n" % 1_000_000)
    stallers = [socket.create_connection(("127.0.0.1", srv.port), timeout=15) for _ in range(4)]
    try:
        for s in stallers:
            s.sendall(head + bytes(900_000))
        time.sleep(0.5)  # the worker reads what they sent
        with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as late:
            late.sendall(head + bytes(1_000_000))
            answer = read_response(late)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:300]
        assert b"retry-after: 5" in answer.lower() and b"too many request bodies" in answer
        with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as small:
            small.sendall(b"GET /liveness HTTP/1.1\r\nHost: x\r\n\r\n")
            assert small.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for s in stallers:
            s.close()
    chunked = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    for _ in range(3):  # after the stallers' deadline; each twice on one kept-alive connection
        with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as s:
            for _ in range(2):
                s.sendall(chunked)
                answer = read_response(s)
                assert answer.startswith(b"HTTP/1.1 400"), answer[:300]  # "hello" is no image: not 408/503
