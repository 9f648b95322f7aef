"""service/onewrite.py: gunicorn's answers, byte for byte, in one write where gunicorn makes two."""
from __future__ import annotations

import time

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import wsgi

from service import onewrite
from service.onewrite import OneWriteResponse


class Sock:
    """Records every send and sendall (a send takes all it is given)."""

    def __init__(self):
        self.writes = []

    def sendall(self, data):
        self.writes.append(bytes(data))

    def send(self, data):
        self.writes.append(bytes(data))
        return len(data)


class Req:
    def __init__(self, method="POST", version=(1, 1), close=False):
        self.method, self.version, self._close = method, version, close

    def should_close(self):
        return self._close


def answer(cls, status, headers, chunks, req=None):
    sock = Sock()
    resp = cls(req or Req(), sock, Config())
    resp.start_response(status, headers)
    for c in chunks:
        resp.write(c)
    resp.close()
    return sock.writes


def same_bytes(a, b):
    # The Date header may tick between the two answers: compare without it.
    def strip(writes):
        return b"".join(writes).split(b"\r\nDate: ", 1)[0], b"".join(writes).split(b" GMT\r\n", 1)[1]
    return strip(a) == strip(b)


BODY = b'{"predicted_class":6}'
CASES = {
    "json answer": ("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))],
                    [BODY], None),
    "empty body": ("204 No Content", [], [], None),
    "head request": ("200 OK", [("Content-Length", "5")], [b"hello"], Req("HEAD")),
    "chunked": ("200 OK", [("Content-Type", "text/plain")], [b"ab", b"cd"], None),
    "two writes": ("200 OK", [("Content-Length", "4")], [b"ab", b"cd"], None),
    "closing": ("413 Payload Too Large", [("Content-Length", "2")], [b"{}"], Req(close=True)),
    "http/1.0": ("200 OK", [("Content-Length", "2")], [b"{}"], Req(version=(1, 0))),
    "http/1.0 chunkless": ("200 OK", [("Content-Type", "text/plain")], [b"ab"], Req(version=(1, 0))),
    "upgrade asked": ("101 Switching Protocols", [("Connection", "Upgrade"), ("Upgrade", "websocket")], [],
                      None),
}


@pytest.mark.parametrize("case", CASES)
def test_same_bytes_as_gunicorn(case):
    status, headers, chunks, req = CASES[case]
    assert same_bytes(answer(OneWriteResponse, status, headers, chunks, req),
                      answer(wsgi.Response, status, headers, chunks, req))


def test_an_answer_with_a_length_leaves_in_one_write():
    status, headers, chunks, _ = CASES["json answer"]
    writes = answer(OneWriteResponse, status, headers, chunks)
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(BODY)
    assert len(answer(wsgi.Response, status, headers, chunks)) == 2   # what gunicorn alone does


def test_a_body_less_answer_still_sends_its_head():
    writes = answer(OneWriteResponse, "204 No Content", [], [])
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 204") and writes[0].endswith(b"\r\n\r\n")


def in_one_second(make):
    """make() twice within one wall-clock second (retried when a second ticks between)."""
    while True:
        sec = int(time.time())
        a, b = make()
        if int(time.time()) == sec:
            return a, b


@pytest.mark.parametrize("case", CASES)
def test_the_whole_head_date_included_is_gunicorns(case):
    status, headers, chunks, req = CASES[case]
    ours, theirs = in_one_second(lambda: (answer(OneWriteResponse, status, headers, chunks, req),
                                          answer(wsgi.Response, status, headers, chunks, req)))
    assert b"".join(ours) == b"".join(theirs)


def test_the_date_line_follows_the_clock(monkeypatch):
    clock = [1_000_000_000.9]
    monkeypatch.setattr(onewrite.time, "time", lambda: clock[0])
    first = onewrite._date_line()
    assert first == "Date: %s\r\n" % util.http_date(clock[0]) == "Date: Sun, 09 Sep 2001 01:46:40 GMT\r\n"
    clock[0] += 0.05   # the same second: the same line
    assert onewrite._date_line() == first
    clock[0] += 1   # the next second: a new line
    assert onewrite._date_line() == "Date: Sun, 09 Sep 2001 01:46:41 GMT\r\n"
