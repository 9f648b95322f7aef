"""WSGI entry point: ``MNISTLITE_MODEL=model.npz gunicorn -c service/gunicorn.conf.py service.wsgi:app``.

Loads the model once at import (in the gunicorn master when ``preload_app`` is on, so workers share
it copy-on-write) and stops the process with a one-line reason if the model is missing or corrupt.
"""
from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

import mnistlite as ml

from .admin import by_port
from .app import create_apps
from .predictor import Predictor
from .settings import Settings


class StartupError(SystemExit):
    """Start-up cannot continue; the message says why and what to do."""


def load_app(environ=None):
    """Build the app from MNISTLITE_MODEL and MNISTLITE_* settings; StartupError on any problem."""
    environ = os.environ if environ is None else environ
    path = environ.get("MNISTLITE_MODEL", "").strip()
    if not path:
        raise StartupError("MNISTLITE_MODEL is not set: point it at a model .npz "
                           "(train one with scripts/train.py)")
    try:
        settings = Settings.from_env(environ)
        public, admin = create_apps(Predictor(ml.load(path)), settings=settings)
        return by_port(public, admin)  # /metrics and the full /v1/model only on the admin port
    except ValueError as e:  # ModelFileError, a bad MNISTLITE_* setting, a model that is not 784 -> ...
        raise StartupError(f"mnistlite service cannot start: {e}") from None


# One BLAS thread per worker: workers are the parallelism, and batch-1 matmuls gain nothing from threads.
# gunicorn.conf.py (and the image) set the variables before numpy loads; threadpoolctl's call, which
# costs cold start (bench_service.py), is only needed when something else imports this module.
if os.environ.get("OPENBLAS_NUM_THREADS") != "1" or os.environ.get("OMP_NUM_THREADS") != "1":
    threadpool_limits(1)
app = load_app()  # a StartupError exits the process with its message, no traceback
