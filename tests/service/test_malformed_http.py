"""Malformed HTTP under the real gunicorn: every request head or body gunicorn cannot parse gets a 4xx
JSON answer (never a 5xx, never gunicorn's HTML page), with ``X-Content-Type-Options: nosniff``.

Hypothesis builds chunked framings (sizes, extensions, terminators, a body cut mid-stream); the table
below names one request per gunicorn.http.errors kind a client can cause.
"""
from __future__ import annotations

import json
import re
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

POST = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"

# One request per parse error a client can trigger (gunicorn.http.errors), head and body.
MALFORMED = {
    "InvalidRequestLine": b"GARBAGE\r\n\r\n",
    "InvalidRequestMethod": b"G@T /liveness HTTP/1.1\r\nHost: x\r\n\r\n",
    "InvalidHTTPVersion": b"GET /liveness HTTP/9.9\r\nHost: x\r\n\r\n",
    "InvalidHeaderName": b"GET /liveness HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
    "InvalidHeader": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "ObsoleteFolding": b"GET /liveness HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
    "LimitRequestLine": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "LimitRequestHeaders": b"GET /liveness HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n",
    "UnsupportedTransferCoding": POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "ExpectationFailed": POST + b"Expect: 200-ok\r\nContent-Length: 0\r\n\r\n",
    "InvalidChunkSize": CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n",
    "ChunkMissingTerminator": CHUNKED + b"5\r\nhelloXX0\r\n\r\n",
    "InvalidChunkExtension": CHUNKED + b"5;\x01=\x02\r\nhello\r\n0\r\n\r\n",
    "NoMoreData": CHUNKED + b"10\r\nabc",  # the client stops sending mid-chunk (half-closes)
}


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    return bool(sep and length and len(body) >= int(length.group(1)))


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw``, half-close, and read the server's first answer (or all it sends until it closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        try:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before taking all of it: read what it said
        data = b""
        try:
            while not _complete(data) and (chunk := s.recv(65536)):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return data


# Statuses other than 400 that a kind gets (gunicorn's own choice of status, kept).
STATUS = {"LimitRequestLine": 414, "LimitRequestHeaders": 431, "ExpectationFailed": 417}


def assert_json_4xx(answer: bytes, what: str, expected: int | None = None) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), f"{what}: no HTTP answer: {answer[:200]!r}"
    status = int(head.split()[1])
    assert 400 <= status < 500, f"{what}: {answer[:400]!r}"
    assert expected in (None, status), f"{what}: expected {expected}: {answer[:400]!r}"
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    assert headers.get(b"content-type", b"").startswith(b"application/json"), f"{what}: {answer[:400]!r}"
    assert headers.get(b"x-content-type-options") == b"nosniff", f"{what}: {head!r}"
    body = body[:int(headers.get(b"content-length", len(body)))]  # a second answer may follow
    assert json.loads(body)["title"], f"{what}: {body[:200]!r}"


@pytest.fixture(scope="module")
def server(gunicorn, small_model_path) -> int:
    return gunicorn(small_model_path, MNISTLITE_ACCESS_LOG="0", MNISTLITE_BODY_TIMEOUT="3").port


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_each_parse_error_gets_a_json_4xx(server, kind):
    # A 408 would mean the server missed the client's end and waited out the body deadline.
    assert_json_4xx(exchange(server, MALFORMED[kind]), kind, STATUS.get(kind, 400))


def _chunk(size: int, data: bytes, ext: bytes, term: bytes) -> bytes:
    return b"%x" % size + ext + b"\r\n" + data + term


CHUNKS = st.lists(st.builds(
    _chunk, st.integers(0, 40), st.binary(max_size=40),
    st.sampled_from([b"", b";a=b", b";a", b";\x00", b"; x=\"q\"", b";=", b"\t;a", b";a=\x7f"]),
    st.sampled_from([b"\r\n", b"\n", b"", b"\r", b"XX\r\n"])), max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=CHUNKS, end=st.sampled_from([b"0\r\n\r\n", b"0\r\n", b"", b"0;x\r\nTrailer: 1\r\n\r\n"]))
def test_any_chunked_framing_gets_an_answer_under_500(server, chunks, end):
    answer = exchange(server, CHUNKED + b"".join(chunks) + end)
    if answer:  # a body too broken to answer may only be closed on; but never a 5xx
        assert_json_4xx(answer, repr(b"".join(chunks) + end))
