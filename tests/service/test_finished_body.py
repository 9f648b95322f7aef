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


class Stalled:
    """A body whose read waits ``seconds`` (cooperatively) before giving ``data``, or raises ``error``."""

    def __init__(self, seconds, data=b"", error=None):
        self.seconds, self.data, self.error = seconds, data, error

    def read(self, size=None):
        import gevent

        gevent.sleep(self.seconds)
        if self.error:
            raise self.error
        return self.data


def in_greenlet(f):
    import gevent

    g = gevent.spawn(f)
    g.join()
    if g.exception:
        raise g.exception
    return g.value


def test_a_read_past_its_deadline_says_what_to_do():
    closed = []
    body = DeadlineBody(Stalled(1.0), time.monotonic() + 0.05, 0.05, lambda: closed.append(1), length=5)
    with pytest.raises(TimeoutError, match=r"^the request body did not arrive within 0.05 s; send it without "
                                           r"pauses$") as e:
        in_greenlet(lambda: body.read(5))
    assert type(e.value) is TimeoutError and e.value.__cause__ is None and e.value.__suppress_context__
    assert body.timed_out and closed


def test_a_timeout_of_the_read_itself_keeps_its_own_message():
    body = DeadlineBody(Stalled(0, error=TimeoutError("socket said so")), time.monotonic() + 5, 5, None,
                        length=5)
    with pytest.raises(TimeoutError, match="^socket said so$"):
        in_greenlet(lambda: body.read(5))
    assert body.timed_out


def test_a_read_within_its_deadline_gives_its_bytes():
    body = DeadlineBody(Stalled(0.01, b"abcde"), time.monotonic() + 5, 5, None, length=5)
    assert in_greenlet(lambda: body.read(5)) == b"abcde" and body.finished and not body.timed_out
