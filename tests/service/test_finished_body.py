"""A request body whose declared length is all read answers gunicorn's closing read from memory: no
deadline applies to it (none can be missed), so a slow answer does not close a kept-alive connection."""
from __future__ import annotations

import io
import time

import pytest

from service.connection import DeadlineBody


def test_a_completely_read_body_never_times_out():
    closed = []
    body = DeadlineBody(io.BytesIO(b"x" * 10), time.monotonic() + 0.05, 0.05, lambda: closed.append(1),
                        length=10)
    assert body.read(10) == b"x" * 10 and body.finished
    time.sleep(0.1)   # the app took longer than the body's deadline to answer
    assert body.read(8192) == b""   # gunicorn finishing the body
    assert body.readline() == b""
    assert not body.timed_out and not closed


def test_a_body_still_arriving_keeps_its_deadline():
    closed = []
    body = DeadlineBody(io.BytesIO(b"x" * 10), time.monotonic() + 0.05, 0.05, lambda: closed.append(1),
                        length=20)
    assert body.read(10) == b"x" * 10 and not body.finished
    time.sleep(0.1)
    with pytest.raises(TimeoutError, match="did not arrive"):
        body.read(8192)
    assert body.timed_out and closed
