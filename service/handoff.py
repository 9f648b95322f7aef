"""When a kept-alive connection should be handed back to the shared accept queue (gevent worker).

A kept-alive connection stays with the worker that accepted it. When that worker is busy or off its core,
its clients wait while the other worker may idle: at 16 connections on a shared machine this made the p99
hundreds of ms (docs/performance.md, "The tail at saturation"). Answering "Connection: close" lets the
client reconnect, and the accept queue gives the connection to whichever worker takes it first. Closing
costs a reconnect, so a connection alone in its worker (a single client) keeps its connection.
"""
from __future__ import annotations

import time

# Connections of this worker that sent a request lately: id of the socket -> (time.monotonic(), socket).
_recent: dict = {}
# "Lately": a client that waits longer than this between requests is not competing for the worker.
WINDOW = 0.1


def _closed(sock) -> bool:
    fileno = getattr(sock, "fileno", None)
    try:
        return fileno is not None and fileno() == -1
    except OSError:
        return True


def should_close(req, *, shared_every: int, alone_every: int) -> bool:
    """True when this request's answer should close its connection: every ``shared_every``-th request of a
    connection while other connections of the worker sent requests within ``WINDOW`` s, every
    ``alone_every``-th otherwise (0: never)."""
    now = time.monotonic()
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    _recent[id(sock)] = (now, sock)
    for key, (seen, other) in list(_recent.items()):
        if now - seen > WINDOW or _closed(other):
            del _recent[key]
    every = shared_every if len(_recent) > 1 else alone_every
    if every and req.req_number % every == 0:
        del _recent[id(sock)]  # it is leaving: its reconnect must not count as a second client
        return True
    return False
