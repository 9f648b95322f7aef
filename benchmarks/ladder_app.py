"""WSGI apps for bench_ladder.py: the /predict path built up one stage at a time, served by gunicorn.

``LADDER_RUNG`` picks how much of the real request path runs (every rung adds one stage to the one
before; stages not yet added return what they would have returned for the benchmark digit, worked
out once at import):

  gunicorn    bare WSGI callable: read the body, answer a fixed JSON body
  falcon      + falcon.App routing to a resource (no middleware)
  middleware  + the service's RequestLog middleware: request id, Prometheus metrics, JSON access log
  multipart   + the bounded body read and the multipart ``file`` field (service.parsing.image_bytes)
  decode      + decode to grayscale (mnistlite.images.decode: libspng for this PNG, else Pillow)
  to_mnist    + invert, crop, scale and centre (mnistlite.images.preprocess.to_mnist)
  detector    + the corruption detector
  full        the real service: service.wsgi's app (adds the model, the answer JSON, class counters)

Run: ``MNISTLITE_MODEL=m.npz LADDER_RUNG=decode gunicorn -c service/gunicorn.conf.py --pythonpath benchmarks
ladder_app:app`` (bench_ladder.py does this for every rung).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RUNGS = ("gunicorn", "falcon", "middleware", "multipart", "decode", "to_mnist", "detector", "full")


def _build(rung: str):
    if rung == "full":
        from service.wsgi import app
        return app

    import falcon
    from loadgen import digit_png

    import mnistlite as ml
    from mnistlite.images.decode import decode_image
    from mnistlite.images.preprocess import to_mnist
    from service import errors
    from service.accesslog import RequestLog
    from service.parsing import image_bytes
    from service.predictor import Predictor
    from service.prometheus_metrics import Metrics, multiprocess_dir
    from service.resources import media_json
    from service.settings import Settings

    level = RUNGS.index(rung)
    model = ml.load(os.environ["MNISTLITE_MODEL"])
    predictor, settings = Predictor(model), Settings()
    gray = decode_image(digit_png())
    digit = to_mnist(gray)
    body = media_json(predictor.predict_images(digit[None])[0])  # what the full app would answer

    if level == 0:
        def bare(environ, start_response):
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        return bare

    class Partial:
        def on_post(self, req, resp):
            data = image_bytes(req, settings) if level >= 3 else req.bounded_stream.read()
            g = decode_image(data) if level >= 4 else gray
            d = to_mnist(g) if level >= 5 else digit
            if level >= 6:
                predictor.check(d[None])
            resp.data = body
            resp.content_type = falcon.MEDIA_JSON

    metrics = Metrics("ladder", predictor.version, predictor.sha256, model.layer_sizes, predictor.n_classes,
                      multiprocess_dir=multiprocess_dir())
    middleware = [RequestLog(metrics, log=settings.access_log)] if level >= 2 else []
    app = falcon.App(middleware=middleware)
    errors.install(app)  # bad input -> the service's 4xx, as in the real app (costs nothing on success)
    app.add_route("/predict", Partial())
    return app


def __getattr__(name: str):
    # Built on first access (gunicorn's import of ladder_app:app), so importing RUNGS loads nothing.
    if name != "app":
        raise AttributeError(name)
    rung = os.environ.get("LADDER_RUNG", "full")
    if rung not in RUNGS:
        raise SystemExit(f"LADDER_RUNG must be one of {', '.join(RUNGS)}, got {rung!r}")
    globals()["app"] = built = _build(rung)
    return built
