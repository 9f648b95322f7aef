"""gunicorn's gevent worker, answering requests gunicorn itself cannot parse with the service's JSON error.

gunicorn answers a malformed request head (bad request line, header, chunk framing, ...) on its own,
before the app runs, with an HTML page, and some client errors with a 5xx (501 for an unknown
transfer coding). This worker answers every one of them as the app answers bad input: a 4xx whose
body is ``{"title", "description"}`` JSON, with ``nosniff``, then closes the connection (where the
next request would start is unknown). Errors that are not the client's go to gunicorn's own handler.
"""
from __future__ import annotations

import json
import os

# No ``import ssl`` here: this module loads in the master, before gevent patches the standard library
# (gevent warns when ssl comes first). TLS errors (a 403) stay with gunicorn's own handler.
import gevent
from gevent.server import StreamServer
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers import ggevent
from gunicorn.workers.ggevent import GeventWorker

from . import fast_head, handoff, onewrite

# Kinds with a more precise status than 400; every other parse error of a request is a 400.
_STATUS = {
    http_errors.LimitRequestLine: (414, "URI Too Long"),
    http_errors.LimitRequestHeaders: (431, "Request Header Fields Too Large"),
    http_errors.ExpectationFailed: (417, "Expectation Failed"),
    http_errors.ForbiddenProxyRequest: (403, "Forbidden"),
}
# Raised while writing the app's answer: the app's fault, so gunicorn's 500 stays.
_SERVER_SIDE = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)
_MAX_DETAIL = 300  # characters of gunicorn's message kept (it can quote the client's bytes)


def client_error(exc: BaseException) -> tuple[int, str] | None:
    """(status, reason) for an error the client's bytes caused, else None."""
    if isinstance(exc, _SERVER_SIDE):
        return None
    for kind, answer in _STATUS.items():
        if isinstance(exc, kind):
            return answer
    if isinstance(exc, (http_errors.ParseException, http_errors.NoMoreData)):
        return 400, "Bad Request"
    return None


def error_response(status: int, reason: str, exc: BaseException) -> bytes:
    """The whole HTTP/1.1 answer (head and JSON body) for a request gunicorn could not parse."""
    detail = str(exc)[:_MAX_DETAIL] or type(exc).__name__
    body = json.dumps({"title": f"{status} {reason}",
                       "description": f"malformed HTTP request ({type(exc).__name__}): {detail}"}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


# A greenlet that finds its client's next request already waiting serves it without passing through
# the event loop; under load that is always so, and it kept its worker from accepting connections or
# reading the others' requests until its keep-alive limit (docs/performance.md, "The tail at saturation").
# After such a request it waits this long, which lets the loop poll once: one request per ready
# connection per turn of the loop, new connections included.
_YIELD_SECONDS = 1e-6


class BalancedServer(StreamServer):
    """gevent's StreamServer, accepting only when its worker's ``gate`` (service/handoff.py) is open: while
    closed it stops watching the listener and looks again after ``handoff.RECHECK`` seconds."""

    gate: handoff.AcceptGate | None = None

    def do_read(self):
        if self.gate is not None and not self.gate.open():
            self.stop_accepting()
            timer = self.loop.timer(handoff.RECHECK)
            timer.start(self._start_accepting_if_started)  # nothing once the server is closed
            return None
        return super().do_read()


class JSONErrorWorker(GeventWorker):
    """``worker_class = "service.worker.JSONErrorWorker"``: gevent, with JSON answers to parse errors,
    turns among kept-alive connections, even shares of the connections among the workers, and each
    answer's head and body in one write (service/onewrite.py), settings read as plain attributes, and
    plain request heads parsed with less work (service/fast_head.py)."""

    def run(self):
        onewrite.install()
        plain_settings(self.cfg)
        fast_head.install(self.cfg)
        board = getattr(self, "handoff_board", None)
        if board is not None:
            BalancedServer.gate = handoff.AcceptGate(board, self.handoff_slot)
            ggevent.StreamServer = BalancedServer  # this worker process only: GeventWorker.run builds from it
        super().run()

    def handle(self, listener, client, addr):
        board, slot = getattr(self, "handoff_board", None), getattr(self, "handoff_slot", None)
        if board is None:
            return super().handle(listener, client, addr)
        board.add(slot, 1)  # the connections this worker holds, for service/handoff.py
        try:
            return super().handle(listener, client, addr)
        finally:
            board.add(slot, -1)

    def handle_request(self, listener_name, req, sock, addr):
        super().handle_request(listener_name, req, sock, addr)  # raises StopIteration when closing
        take_turns(req.unreader)

    def init_process(self):
        board = getattr(self, "handoff_board", None)
        if board is not None:
            board.enter(self.handoff_slot, os.getpid())
        super().init_process()

    def handle_error(self, req, client, addr, exc):
        answer = client_error(exc)
        if answer is None:
            return super().handle_error(req, client, addr, exc)
        ip = (addr or ("", -1))[0]
        self.log.warning("Invalid request from ip=%s: %s", ip, exc)
        try:
            util.write_nonblock(client, error_response(*answer, exc))
        except Exception:  # noqa: BLE001 - the client may be gone already; nothing more to tell it
            self.log.debug("Failed to send error message.")


def plain_settings(cfg) -> None:
    """Store each of gunicorn's settings on ``cfg`` itself, so that reading one is a plain attribute.

    gunicorn's ``Config`` answers every ``cfg.name`` through ``__getattr__`` and the setting's ``get()``,
    and parsing and answering one request reads some twenty of them. A worker's settings never change
    after its fork (a reload forks new workers), so its copy can hold the values. Names the class
    itself defines (``is_ssl``, ``address``, ...) stay as they are.
    """
    for name, setting in cfg.settings.items():
        if not hasattr(type(cfg), name):
            object.__setattr__(cfg, name, setting.get())   # Config.__setattr__ refuses setting names


def take_turns(conn) -> None:
    """After an answer on kept-alive connection ``conn`` (any object taking attributes): let the event
    loop run once if it has not run since this connection's previous answer."""
    loop = gevent.get_hub().loop
    if getattr(conn, "loop_turn", None) == loop.iteration:
        gevent.sleep(_YIELD_SECONDS)
    conn.loop_turn = loop.iteration
