"""The admin listener: /metrics and the full model description, on a port of their own.

gunicorn binds two addresses (service/gunicorn.conf.py): the public one, which the Service and the
Ingress route to, and the admin one (``MNISTLITE_METRICS_BIND``), which only Prometheus reaches. Every
worker accepts on both; ``by_port`` sends each request to the app of the listener it arrived on, judged
by the connection's own local port (not the Host header, which the client writes).
"""
from __future__ import annotations

import weakref

import falcon

from . import errors, resources
from .headers import Nosniff

# The admin listeners' ports, filled in by gunicorn's when_ready hook (in the master, before the fork).
ADMIN_PORTS: set[int] = set()


def create_admin_app(predictor, metrics, settings) -> falcon.App:
    """GET /metrics (merged over the workers) and GET /v1/model with the full description."""
    app = falcon.App(middleware=[Nosniff()])
    errors.install(app)
    app.add_route("/metrics", resources.MetricsText(metrics))
    app.add_route("/v1/model", resources.StaticJSON(resources.describe(predictor, settings)))
    return app


# A connection's local port never changes: asked of the kernel (getsockname) once per connection, not once
# per request; the entry goes with the socket.
_PORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _local_port(environ) -> int | None:
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return None
    try:
        return _PORTS[sock]
    except (KeyError, TypeError):   # TypeError: a socket that takes no weak reference
        pass
    port = _ask_port(sock)
    if port is not None:
        try:
            _PORTS[sock] = port
        except TypeError:
            pass
    return port


def _ask_port(sock) -> int | None:
    try:
        name = sock.getsockname()
    except OSError:
        return None
    return name[1] if isinstance(name, tuple) else None  # a Unix socket's name is a path: public


def by_port(public, admin, ports=ADMIN_PORTS):
    """A WSGI app answering with ``admin`` on connections to one of ``ports``, else with ``public``."""
    def app(environ, start_response):
        target = admin if ports and _local_port(environ) in ports else public
        return target(environ, start_response)

    return app
