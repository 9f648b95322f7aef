"""Large uploads take a worker's upload slot in turn; small requests never wait for one.

No timings are asserted: each test checks what a client receives (an answer, a 413, a closed connection).
"""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from service_kit import closed_by_server, read_response, start

pytestmark = pytest.mark.slow


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
