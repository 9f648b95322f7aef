"""A cheaper parse of ordinary request heads, and per-worker caches of gunicorn's per-request facts.

``FastRequest`` is gunicorn's ``Request`` with one shortcut: a head that is already complete in the first
buffer and matches a strict, simple grammar (``METHOD SP /target SP HTTP/1.1``, header names of letters,
digits and ``-``, values of visible ASCII, spaces and tabs, no obs-fold, no Transfer-Encoding or Expect
field, within every ``limit_request_*`` setting) is split with one regular expression instead of
gunicorn's per-line checks. Every other head, and any doubt, goes to gunicorn's own parser unchanged, with
the buffer untouched, so it raises what gunicorn raises. The fields found go through gunicorn's own header
policy (singleton fields, forwarded scheme headers) and body framing (``set_body_reader``), so a head
taken here gives the same attributes as gunicorn's parse (tests/service/test_fast_head.py compares them).

``install`` puts both in place inside a worker process only (service/worker.py).
"""
from __future__ import annotations

import logging
import re
import sys

from gunicorn.http import parser as http_parser
from gunicorn.http import wsgi
from gunicorn.http.message import Request
from gunicorn.util import split_request_uri

# The whole head up to (not including) its blank line. Methods are the usual ones, so that
# permit_unconventional_http_method and casefold_http_method change nothing; header names leave out "_"
# (header_map) and values leave out CR, LF, other controls, DEL and obs-text.
_HEAD = re.compile(rb"(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) (/[\x21-\x7e]*) HTTP/1\.1"
                   rb"((?:\r\n[0-9A-Za-z-]+:[\t\x20-\x7e]*)*)")
# Fields this parse leaves to gunicorn: framing it alone decides, and the 100-continue handshake.
_LEAVE_TO_GUNICORN = (b"transfer-encoding", b"expect")
# gunicorn settings that change how a head is read; with any of them on, gunicorn parses.
_PLAIN_FLAGS = ("strip_header_spaces", "permit_obsolete_folding")
_TRUST_CACHE_MAX = 4096
_GunicornErrors = wsgi.WSGIErrorsWrapper


class FastRequest(Request):
    """gunicorn's ``Request``, parsing a complete, plain head in the first buffer without its per-line
    checks, and remembering per peer address whether that peer may set forwarded headers."""

    def _parse_python(self, unreader, buf):
        rest = self._parse_plain(buf)
        if rest is None:
            return super()._parse_python(unreader, buf)
        return rest

    def _parse_plain(self, buf) -> bytes | None:
        """The bytes after the head when ``buf`` holds a whole plain head (attributes set), else None
        with nothing changed."""
        end = buf.find(b"\r\n\r\n")
        if end < 0 or any(getattr(self.cfg, flag) for flag in _PLAIN_FLAGS):
            return None
        data = bytes(buf)
        match = _HEAD.fullmatch(data, 0, end)
        if match is None:
            return None
        fields = match.group(3)
        if fields and any(name in fields.lower() for name in _LEAVE_TO_GUNICORN):
            return None  # the name may be inside a value: gunicorn decides either way
        limit = self.limit_request_line
        if 0 < limit < match.end(2) + 9:  # the request line: METHOD SP target SP HTTP/1.1
            return None
        lines = fields.split(b"\r\n")[1:] if fields else []
        if len(lines) > self.limit_request_fields:
            return None
        if max(map(len, lines), default=0) + 2 > self.limit_request_field_size > 0:
            return None
        uri = match.group(2).decode("latin-1")
        try:
            parts = split_request_uri(uri)
        except ValueError:
            return None
        return self._take_plain(match.group(1).decode("latin-1"), uri, parts, lines, data[end + 4:])

    def _take_plain(self, method, uri, parts, lines, rest):
        headers, scheme_state, seen = [], [False], set()
        secure_scheme_headers, forwarder_headers = self._peer_trusted_for_forwarded()
        for line in lines:
            name, _, value = line.decode("latin-1").partition(":")
            kept = self._apply_header_policy(name.upper(), value.strip(" \t"), scheme_state, seen,
                                             secure_scheme_headers, forwarder_headers)
            if kept is not None:
                headers.append(kept)
        self.method, self.uri, self.version = method, uri, (1, 1)
        self.path, self.query, self.fragment = parts.path or "", parts.query or "", parts.fragment or ""
        self.headers = headers
        return rest

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
