"""``create_app(predictor)``: the Falcon WSGI app around a ready predictor (tests inject a fake one)."""
from __future__ import annotations

import sys

import falcon

from . import admin, errors, oip, openapi, page, resources, tfserving
from .accesslog import RequestLog
from .headers import Nosniff
from .predictor import ServingModel
from .prometheus_metrics import Metrics, multiprocess_dir
from .settings import Settings


def create_app(predictor: ServingModel, *, settings: Settings | None = None, log_stream=None) -> falcon.App:
    """The public app of ``create_apps`` (what clients reach)."""
    return create_apps(predictor, settings=settings, log_stream=log_stream)[0]


def create_apps(predictor: ServingModel, *, settings: Settings | None = None,
                log_stream=None) -> tuple[falcon.App, falcon.App]:
    """The public app around ``predictor`` (``service.predictor.Predictor(model)`` in production), and
    the admin app sharing its metrics (/metrics, the full /v1/model; service/admin.py).

    Runs the readiness self-test once, here, so probes cost nothing per request. ``log_stream``
    receives the JSON access log (default: sys.stdout).
    """
    settings = settings or Settings()
    failure = predictor.self_test()
    if failure:
        print(f"mnistlite service NOT READY: {failure}", file=sys.stderr, flush=True)
    metrics = Metrics(settings.model_name, predictor.version, predictor.sha256, predictor.layer_sizes,
                      predictor.n_classes, multiprocess_dir=multiprocess_dir())
    metrics.watch(predictor, ready=failure is None)

    app = falcon.App(middleware=[RequestLog(metrics, log=settings.access_log, stream=log_stream), Nosniff()])
    errors.install(app)
    ready = {"status": "ready", "model_version": predictor.version}
    app.add_route("/predict", resources.Predict(predictor, metrics, settings))
    app.add_route("/liveness", resources.StaticJSON({"status": "alive"}))
    app.add_route("/readiness", resources.StaticJSON(ready, failure))
    app.add_route("/v1/model", resources.StaticJSON(resources.describe_public(predictor, settings)))
    app.add_route("/openapi.json", resources.StaticJSON(openapi.document(settings, predictor.n_classes)))
    oip.add_routes(app, predictor, metrics, settings, failure)
    tfserving.add_routes(app, predictor, metrics, settings, failure)  # /v1/models/{name}[:predict]
    page.add_routes(app)  # GET /: the drawing page and its static files
    return app, admin.create_admin_app(predictor, metrics, settings)
