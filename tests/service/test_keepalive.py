"""A real gunicorn hands a kept-alive connection off after MNISTLITE_KEEPALIVE_REQUESTS requests."""
import http.client

import pytest

pytestmark = pytest.mark.slow


def answers_on_one_connection(port, n):
    """The Connection header of each of n GET /readiness answers sent on one kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        out = []
        for _ in range(n):
            conn.request("GET", "/readiness")
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            out.append((r.getheader("Connection") or "").lower())
            if out[-1] == "close":
                break
        return out
    finally:
        conn.close()


def test_connection_is_handed_off_after_the_limit(gunicorn, small_model_path):
    server = gunicorn(small_model_path, MNISTLITE_KEEPALIVE_REQUESTS="3")
    assert answers_on_one_connection(server.port, 5) == ["keep-alive", "keep-alive", "close"]


def test_zero_keeps_the_connection(gunicorn, small_model_path):
    server = gunicorn(small_model_path, MNISTLITE_KEEPALIVE_REQUESTS="0")
    assert "close" not in answers_on_one_connection(server.port, 5)
