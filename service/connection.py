"""Request bodies on the wire, for gunicorn's gevent worker: a read deadline, discarding, ``Expect``.

``service/gunicorn.conf.py`` calls ``before_request`` and ``after_request`` from its ``pre_request`` and
``post_request`` hooks. They make three promises the app alone cannot keep:

- a body must arrive within ``body_timeout`` seconds of its request head (a trickling client is cut
  off; the app sees ``TimeoutError`` from ``wsgi.input`` and answers 408);
- a body the app did not read (a 413, a 415, a 400) is read and discarded after the answer is sent,
  up to ``discard_max_bytes``, so that a client that sends its whole body before reading (urllib,
  requests) reads the answer instead of a connection reset; past that cap the connection is closed;
- a request with ``Expect: 100-continue`` whose declared length is over the limit gets its final
  answer (413) at once and no ``100 Continue``, so the client never sends the body;
- a worker holds at most its in-flight budget of body bytes across all its connections
  (service/inflight.py); a body that cannot get budget within its deadline is answered 503.
"""
from __future__ import annotations

import time

import gevent
from gevent.lock import BoundedSemaphore

from .errors import ServerBusy
from .inflight import Budget

# Discarding reads this much per call. gunicorn fills each read's buffer before returning, so a stalled
# body holds up to this much while it is discarded, outside the in-flight budget: small, so that hundreds
# of refused bodies cost little, large enough that a 64 MiB body takes a few thousand reads at most.
_DISCARD_CHUNK = 32 * 1024
# A body is "large" above this declared size (or when chunked): such bodies are received only a few at a
# time per worker, since each is held whole in memory while it arrives (the service reads it at once).
LARGE_BODY = 1 << 20
# Bodies declared this small skip the in-flight budget (so a digit is never queued behind uploads): at
# most worker_connections of them, so they hold a bounded amount whatever the clients do.
SMALL_BODY = 16 << 10
# A body takes budget in pieces of this size before reading them, so a stalled client holds only
# what it sent, plus one piece.
_PIECE = 256 * 1024
# How long a body waits for budget before its 503: a waiting client holds a connection and the kernel's
# buffers, and under a flood of stalled bodies the budget frees only at their deadlines; better to say
# "retry" soon.
BUDGET_WAIT = 3.0
_upload_slots: BoundedSemaphore | None = None  # one per worker process, made on first use (after the fork)
_budget: Budget | None = None  # likewise


def _budget_of(capacity: int) -> Budget:
    global _budget
    if _budget is None:
        _budget = Budget(capacity)
    return _budget


def _slots(n: int) -> BoundedSemaphore:
    global _upload_slots
    if _upload_slots is None:
        _upload_slots = BoundedSemaphore(n)
    return _upload_slots


class _Late(TimeoutError):
    """A body read's deadline passed (raised by its ``gevent.Timeout``; ``DeadlineBody`` says what)."""


class DeadlineBody:
    """``wsgi.input`` whose every read ends by ``deadline`` (time.monotonic()) or raises ``TimeoutError``.

    The deadline is enforced with ``gevent.Timeout``: only the waiting for bytes is bounded, never CPU
    work, and a client that sends one byte a second is cut off as surely as one that sends nothing.
    """

    def __init__(self, body, deadline: float, seconds: float, on_timeout=None, length: int | None = None,
                 slots: BoundedSemaphore | None = None, budget: Budget | None = None):
        self._body, self.deadline, self.seconds, self.on_timeout = body, deadline, seconds, on_timeout
        self.length = length  # the declared Content-Length; None for a chunked body
        self.bytes_read = 0
        self.finished = False  # the whole body has been read
        self.timed_out = False
        self.slots, self.holding = slots, False  # a large body waits for an upload slot before its first read
        self.budget, self.taken = budget, 0  # bytes of the worker's in-flight budget this body holds

    def release(self) -> None:
        """The request is over: give back its slot and budget, for good (gunicorn may still read what is
        left of the body before the connection's next request, and that must take neither again)."""
        if self.holding:
            self.holding = False
            self.slots.release()
        self.slots = None
        if self.budget is not None:
            self.budget.give(self.taken)
            self.budget, self.taken = None, 0

    def _call(self, method, *args):
        if self.length is not None and self.bytes_read >= self.length:
            # The declared length is all read (gunicorn's own read after the app's, to finish the body):
            # its reader answers from memory and never waits on the socket, so no deadline is armed.
            return method(*args)
        remaining = self.deadline - time.monotonic()
        if self.slots is not None and not self.holding:
            # Not a timeout of this client's: answer, then discard its body (after_request) and go on.
            if remaining <= 0 or not self.slots.acquire(timeout=remaining):
                raise ServerBusy("the server is receiving too many large uploads; retry in a few seconds")
            self.holding = True
            # Its turn now: the body gets its whole time from here (waiting was bounded by the same time).
            self.deadline = time.monotonic() + self.seconds
            remaining = self.seconds
        try:
            if remaining <= 0:
                raise _Late
            with gevent.Timeout(remaining, _Late):   # a class: its message is written only when it fires
                data = method(*args)
        except TimeoutError as e:
            self.timed_out = True
            if self.on_timeout:  # before the app answers, so that its answer says "Connection: close"
                self.on_timeout()
            if isinstance(e, _Late):
                raise TimeoutError(f"the request body did not arrive within {self.seconds:g} s; "
                                   "send it without pauses") from None
            raise
        n = len(data) if isinstance(data, bytes) else sum(map(len, data))
        self.bytes_read += n
        if (n == 0 and args[0] != 0) or (self.length is not None and self.bytes_read >= self.length):
            self.finished = True
        return data

    def read(self, size=None):
        if self.budget is None:
            return self._call(self._body.read, size)
        want = None if size is None or size < 0 else size
        parts = []
        while want is None or want > 0:
            if self.length is not None and self.bytes_read >= self.length:
                break
            step = _PIECE if want is None else min(_PIECE, want)
            if self.length is not None:
                step = min(step, self.length - self.bytes_read)
            # Refused for want of budget is not the client's fault: its body is discarded after the answer.
            if not self.budget.take(step, min(self.deadline, time.monotonic() + BUDGET_WAIT)):
                raise ServerBusy("the server is receiving too many request bodies; retry in a few seconds")
            self.taken += step
            data = self._call(self._body.read, step)
            self.budget.give(step - len(data))
            self.taken -= step - len(data)
            if not data:
                break
            parts.append(data)
            if want is not None:
                want -= len(data)
        return b"".join(parts)

    def _counted(self, data):
        if self.budget is not None:  # lines cannot be sized before reading them: count them after
            n = len(data) if isinstance(data, bytes) else sum(map(len, data))
            self.budget.used += n
            self.taken += n
        return data

    def readline(self, size=None):
        return self._counted(self._call(self._body.readline, size))

    def readlines(self, size=None):
        return self._counted(self._call(self._body.readlines, size))

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __getattr__(self, name):  # anything else (e.g. gunicorn's ``failed`` flag) from the real body
        return getattr(self._body, name)


def _header(req, name: str):
    for key, value in req.headers:
        if key == name:
            return value
    return None


def held(req) -> int:
    """How many bytes past the request's head gunicorn has received already (its reader's buffer), or 0
    when that cannot be told."""
    buf = getattr(getattr(req, "unreader", None), "buf", None)
    try:
        with buf.getbuffer() as view:
            return view.nbytes
    except (AttributeError, BufferError):
        return 0


def declared_length(req) -> int | None:
    """The request's Content-Length as an int, or None (absent, chunked, or unparseable)."""
    raw = _header(req, "CONTENT-LENGTH")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def before_request(req, *, limit_for, body_timeout: float, upload_slots: int = 1,
                   inflight_bytes: int = 32 << 20) -> None:
    """Refuse ``Expect: 100-continue`` over the limit (no 100, close after the 413); bound the body read.

    ``limit_for(content_type)`` is the byte limit the app applies to a body of that type. At most
    ``upload_slots`` large bodies (see ``LARGE_BODY``) are received at once by this worker; the others
    wait (their bytes stay in the kernel, and TCP slows their senders) within their body deadline.
    Every body but a small one (``SMALL_BODY``) also reads within the worker's ``inflight_bytes`` budget.
    """
    length = declared_length(req)
    if getattr(req, "_expected_100_continue", False) and length is not None \
            and length > limit_for(_header(req, "CONTENT-TYPE") or ""):
        # gunicorn sends "100 Continue" when it builds the environ, right after this hook: the client
        # would then send the body the app is about to refuse. The app answers 413 from the declared
        # length instead, and the connection closes, since the client may or may not send the body.
        req._expected_100_continue = False
        req.force_close()
        return  # the app reads none of this body, and nothing is discarded after the answer
    chunked = _header(req, "TRANSFER-ENCODING") is not None
    if not chunked and length is not None and length <= SMALL_BODY and held(req) >= length:
        return  # the whole body came with its head: reading it never waits, and it is never discarded unread
    if req.body is not None and (chunked or (length or 0) > 0):  # GETs and empty POSTs have nothing to bound
        large = chunked or length > LARGE_BODY
        small = not chunked and length <= SMALL_BODY
        req.body = DeadlineBody(req.body, time.monotonic() + body_timeout, body_timeout, req.force_close,
                                None if chunked else length, _slots(upload_slots) if large else None,
                                None if small else _budget_of(inflight_bytes))


def after_request(req, *, discard_max_bytes: int) -> None:
    """Read and discard what the app left of the body, up to the cap; otherwise close the connection.

    Runs after the answer has been written, so a client that reads while it sends has the answer
    already; one that sends everything first finds it once its last byte is taken.
    """
    body = req.body
    if not isinstance(body, DeadlineBody):
        return
    body.release()  # the app is done with its copy of the body; discarding holds no memory: no slot needed
    if body.finished or body.timed_out:  # a client too slow for its deadline is closed on, not waited for
        return
    body.deadline = time.monotonic() + body.seconds  # a body refused unread gets its own time to arrive
    # Also when the connection closes anyway (urllib sends "Connection: close"): closing with unread
    # bytes in the socket's receive buffer makes the kernel send a reset, which can destroy the answer
    # before the client reads it.
    length = declared_length(req)
    if length is not None and length > discard_max_bytes:
        req.force_close()  # past the cap: closing is cheaper than reading, and allowed
        return
    try:
        while True:
            data = body.read(_DISCARD_CHUNK)
            if not data:
                return
            if body.bytes_read > discard_max_bytes:  # a chunked body with no declared end
                req.force_close()
                return
    except Exception:  # noqa: BLE001 - a timeout, a reset, a malformed chunk: the next request's start is unknown
        req.force_close()
