"""Per-worker caches of facts gunicorn looks up again for every request.

``FastRequest`` is gunicorn's ``Request`` remembering, per peer address, whether that peer may set
forwarded headers (gunicorn parses the address and matches it against ``forwarded_allow_ips`` each time);
``WorkerErrors`` is one ``wsgi.errors`` for all of a worker's requests. ``install`` puts both in place
inside a worker process only (service/worker.py).
"""
from __future__ import annotations

import logging
import sys

from gunicorn.http import parser as http_parser
from gunicorn.http import wsgi
from gunicorn.http.message import Request

_TRUST_CACHE_MAX = 4096
_GunicornErrors = wsgi.WSGIErrorsWrapper


class FastRequest(Request):
    """gunicorn's ``Request``, remembering per peer address whether that peer may set forwarded headers."""

    def _peer_is_trusted_proxy(self):
        # gunicorn parses the peer's address and matches it against forwarded_allow_ips on every request;
        # a worker's settings never change, so the answer per address is kept.
        peer = self.peer_addr
        if not isinstance(peer, tuple):
            return super()._peer_is_trusted_proxy()
        cache = self.cfg.__dict__.get("_mnistlite_trusted_peers")
        if cache is None:
            cache = {}
            object.__setattr__(self.cfg, "_mnistlite_trusted_peers", cache)  # Config refuses setattr
        trusted = cache.get(peer[0])
        if trusted is None:
            trusted = super()._peer_is_trusted_proxy()
            if len(cache) >= _TRUST_CACHE_MAX:
                cache.clear()
            cache[peer[0]] = trusted
        return trusted


class WorkerErrors(_GunicornErrors):
    """``wsgi.errors`` for every request of a worker: gunicorn's wrapper, finding its streams when written
    to (so after a USR1 reopen it writes to the new files), instead of one wrapper built per request."""

    def __init__(self, cfg):  # noqa: D107 - the base class's per-request lookups move to ``streams``
        self._cfg = cfg
        self._log = logging.getLogger("gunicorn.error")

    @property
    def streams(self):
        handlers = self._log.handlers
        streams = []
        if self._cfg.errorlog == "-":
            streams.append(sys.stderr)
            handlers = handlers[1:]
        return streams + [h.stream for h in handlers if hasattr(h, "stream")]

    def close(self):
        """Shared by every request: one app closing it must not close it for the next."""


def install(cfg) -> None:
    """Inside a worker process: parse with ``FastRequest``, and give every request of ``cfg`` the worker's
    one ``wsgi.errors`` (gunicorn's ``base_environ`` builds it through the module's name)."""
    http_parser.RequestParser.mesg_class = FastRequest
    shared = WorkerErrors(cfg)
    wsgi.WSGIErrorsWrapper = lambda cfg_: shared if cfg_ is cfg else _GunicornErrors(cfg_)
