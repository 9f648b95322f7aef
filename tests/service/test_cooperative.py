"""A costly upload lets a gevent worker's other connections run between its preprocessing stages
(service/cooperative.py): checked by the order in which things happen, never by time."""
from __future__ import annotations

import io

import gevent
import numpy as np
import pytest
from gevent import pywsgi, socket
from PIL import Image

from mnistlite.images.preprocess import preprocess_image
from service import cooperative
from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """A 1800x1800 page (within the PNG decode budget): a flat margin around one dark block (the CPU bomb's
    shape)."""
    a = np.full((1800, 1800), 255, np.uint8)
    a[12:-12, 12:-12] = 20
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=9)   # a few KB: the kernel buffers it whole
    return buf.getvalue()


def test_pauses_do_nothing_outside_a_greenlet_the_hub_runs():
    p = cooperative.Pauses(quantum=0)
    p()
    assert p.count == 0


def test_a_pause_lets_the_others_in_only_after_a_quantum_of_running():
    now = [0.0]
    p = cooperative.Pauses(quantum=0.004, clock=lambda: now[0], cpu=lambda: now[0])

    def run():
        for t in (0.001, 0.005, 0.006, 0.0095, 0.0101):
            now[0] = t
            p()
        return p.count

    assert gevent.spawn(run).get() == 2   # at 0.005 (4 ms after the start) and at 0.0101 (4 ms after that)


def test_a_costly_upload_lets_another_greenlet_run_between_its_stages(big_png):
    order = []

    def bomb():
        p = cooperative.Pauses(quantum=0)
        preprocess_image(big_png, pause=p)
        order.append(("bomb done", p.count))

    jobs = [gevent.spawn(bomb), gevent.spawn(order.append, ("other ran", None))]
    gevent.joinall(jobs, raise_error=True)
    assert order[0] == ("other ran", None), order
    assert order[1][1] >= 2, order   # after decoding and after the full-size checks at least


def _answer(s) -> bytes:
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            s.close()
            return data
        data += chunk


def test_liveness_is_answered_while_a_worker_is_mid_bomb(fake, big_png, monkeypatch):
    """The app under gevent's WSGI server: a bomb's upload, then a /liveness request, both waiting in
    the kernel before the server starts; the probe is answered first, because the bomb pauses between
    its stages (without the pauses the bomb, accepted first, runs to its end)."""
    monkeypatch.setattr(cooperative, "QUANTUM", 0.0)
    app = create_app(fake, settings=Settings(access_log=False))
    finished = []

    def recording(environ, start_response):
        out = app(environ, start_response)
        finished.append(environ["PATH_INFO"])
        return out

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    bomb = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(big_png)) + big_png
    clients = []
    for request in (bomb, b"GET /liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(request)    # small: the kernel holds it until the server reads
        clients.append(c)
    server = pywsgi.WSGIServer(listener, recording, log=None)
    server.start()
    try:
        jobs = [gevent.spawn(_answer, c) for c in clients]
        gevent.joinall(jobs, raise_error=True, timeout=60)
    finally:
        server.stop()
    assert [j.value.split(b"\r\n")[0] for j in jobs] == [b"HTTP/1.1 200 OK"] * 2
    assert finished == ["/liveness", "/predict"]




def test_a_request_held_up_by_the_machine_does_not_pause():
    """The wall clock passes the quantum while the request used little CPU (the machine took its core
    away): pausing would only hold it longer, and under a steady load the loop is never idle."""
    wall, cpu = [0.0], [0.0]
    p = cooperative.Pauses(quantum=0.004, clock=lambda: wall[0], cpu=lambda: cpu[0])

    def run():
        wall[0], cpu[0] = 0.050, cooperative.MIN_CPU / 2   # 50 ms late, little CPU
        p()
        first = p.count
        wall[0], cpu[0] = 0.060, cooperative.MIN_CPU * 1.5   # a costly request on a busy machine
        p()
        return first, p.count

    assert gevent.spawn(run).get() == (0, 1)
