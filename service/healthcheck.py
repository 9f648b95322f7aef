"""The image's HEALTHCHECK: GET /readiness where gunicorn listens; exit 0 on 200, else 1 with one line.

Run as ``python -m service.healthcheck`` (the image has no shell and no curl). The address is the one
service/gunicorn.conf.py binds: ``MNISTLITE_BIND``, else ``0.0.0.0:$PORT`` (PORT default 8000); a
wildcard host is probed on loopback. Only the standard library: it runs every few seconds.
"""
from __future__ import annotations

import os
import sys
import urllib.request

WILDCARD_TO_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def readiness_url(environ) -> str:
    """The /readiness URL for the address gunicorn binds under ``environ``."""
    bind = environ.get("MNISTLITE_BIND") or "0.0.0.0:" + environ.get("PORT", "8000")
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    host = WILDCARD_TO_LOOPBACK.get(host, host)
    return "http://%s:%s/readiness" % (f"[{host}]" if ":" in host else host, port)


def main() -> int:
    url = readiness_url(os.environ)
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            status = resp.status
    except OSError as exc:  # URLError, HTTPError (503 while not ready), timeouts
        print(f"healthcheck: {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
