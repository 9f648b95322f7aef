"""Per-request bookkeeping middleware: request id, latency, metrics and a one-line JSON access log.

Logging from the app (not gunicorn's ``access_log_format``) keeps every field JSON-escaped and
lets the line carry the request id and the route template.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from json.encoder import encode_basestring_ascii

# Echo a client's id only if it is short and plain, so logs and headers cannot be polluted.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}").fullmatch


class _Ids:
    """Fresh request ids, 32 hex digits of 16 random bytes each, as ``os.urandom(16).hex()`` gives, taken
    from ``os.urandom`` 4 KiB at a time: one getrandom system call per 256 requests, not one per request.
    Safe for threads (gthread workers): ids are popped from a list, one step that no two threads share; two
    threads refilling at once each make a pool of their own. A forked child (a gunicorn worker) starts a
    pool of its own, so no two processes share ids."""

    _SIZE = 4096

    def __init__(self):
        self._pool: list = []
        os.register_at_fork(after_in_child=self._drop)

    def _drop(self) -> None:
        self._pool = []

    def __call__(self) -> str:
        try:
            return self._pool.pop()
        except IndexError:
            digits = os.urandom(self._SIZE).hex()
            pool = [digits[i:i + 32] for i in range(0, len(digits), 32)]
            rid = pool.pop()
            self._pool = pool
            return rid


new_id = _Ids()


def _quote(v) -> str:
    """json.dumps(v): for a str, the C escaper json.dumps itself ends in, without its encoder set-up."""
    return encode_basestring_ascii(v) if isinstance(v, str) else json.dumps(v)


class RequestLog:
    """Falcon middleware: sets ``req.context.request_id`` and answers with ``X-Request-ID``.

    ``stream`` receives one JSON object per line (default: sys.stdout at write time); ``log=False``
    keeps the id and metrics but writes nothing.
    """

    def __init__(self, metrics, *, log: bool = True, stream=None):
        self.metrics = metrics
        self.log = log
        self.stream = stream
        self._sec, self._stamp = -1, ""

    def process_request(self, req, resp):
        req.context.start = time.perf_counter()
        rid = req.get_header("X-Request-ID")
        req.context.request_id = rid if rid and _SAFE_ID(rid) else new_id()

    def process_response(self, req, resp, resource, req_succeeded):
        start = getattr(req.context, "start", None)
        seconds = time.perf_counter() - start if start is not None else 0.0
        rid = getattr(req.context, "request_id", None) or new_id()
        resp.set_header("X-Request-ID", rid)
        status = resp.status_code
        route = req.uri_template or "(unmatched)"
        self.metrics.observe(route, str(status), seconds)
        if self.log:
            now = time.time()
            sec = int(now)
            if sec != self._sec:  # the date part changes once a second: format it once a second
                self._sec, self._stamp = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            # Written field by field (fixed field order, three decimals of duration) rather than
            # json.dumps of a dict, which costs more on the measured path (bench_service.py
            # --breakdown, "whole app call"); every string is still escaped as json.dumps would,
            # the client-controlled ones above all.
            q = _quote
            line = (f'{{"time":"{self._stamp}.{int((now - sec) * 1000):03d}Z","request_id":{q(rid)},'
                    f'"method":{q(req.method)},"path":{q(req.path)},"route":{q(route)},'
                    f'"status":{status},"duration_ms":{seconds * 1000:.3f},'
                    f'"bytes_in":{req.content_length or 0},"remote":{q(req.remote_addr)}}}\n')
            out = self.stream or sys.stdout
            out.write(line)
            out.flush()  # a crashed or killed worker must not take its last lines with it
