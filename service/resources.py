"""The v1 routes: POST /predict, the probes, GET /v1/model, GET /metrics (admin port) and GET /openapi.json.

Everything a response can be computed from at start-up (model description, OpenAPI document,
probe bodies) is serialised once in the constructors; responders only do per-request work.
"""
from __future__ import annotations

import json

import falcon
import numpy as np

from mnistlite.images.preprocess import preprocess_image
from mnistlite.nn.arrays import to_pixels

from .cooperative import Pauses
from .errors import InputError, NotReady
from .explain import add_inputs
from .parsing import JSON_TYPES, image_bytes, json_body, media_type, pixels
from .prometheus_metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .prometheus_metrics import input_kind


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# Falcon's default JSON media handler is json.dumps(obj, ensure_ascii=False): the same encoder,
# built once (json.dumps builds one per call when given options), and no per-request handler
# lookup; on the measured path of /predict (bench_service.py --breakdown, "answer dict + JSON").
_MEDIA_ENCODER = json.JSONEncoder(ensure_ascii=False)


def media_json(obj) -> bytes:
    """The bytes ``resp.media = obj`` would give."""
    return _MEDIA_ENCODER.encode(obj).encode()


class Predict:
    """POST /predict: multipart ``file``, a raw image body, or JSON ``{"instances": [...]}``."""

    def __init__(self, predictor, metrics, settings):
        self.predictor, self.metrics, self.settings = predictor, metrics, settings

    def on_post(self, req, resp):
        explain = req.get_param_as_bool("explain", default=False)  # ?explain=1: add the 28x28 input as PNG
        info = {}   # filled by preprocess_image for an image body; empty for JSON arrays
        if media_type(req) in JSON_TYPES:
            doc = json_body(req, self.settings)
            if not isinstance(doc, dict) or "instances" not in doc:
                raise InputError('the JSON body must be an object {"instances": [...]}')
            x = pixels(doc["instances"], "instances", self.settings.max_batch)
            answers = self.predictor.predict(x)
            if explain:
                add_inputs(answers, to_pixels(x))
            resp.data = media_json({"predictions": answers})
        else:
            # The library's preprocessing, shared with training: ImageError / ImageTooLarge on bad input.
            # A costly image lets the worker's other connections run between its stages (cooperative.py).
            info = {}
            image = preprocess_image(image_bytes(req, self.settings), max_side=self.settings.max_image_side,
                                     info=info, pause=Pauses())
            answers = self.predictor.predict_images(image[None], no_ink=np.array([info["empty"]]))
            if info["empty"]:   # no ink found: not a digit (calibrated models), and the reason as a warning
                answers[0]["warnings"] = [info["reason"]]
            if explain:
                add_inputs(answers, image[None])
            resp.data = media_json(answers[0])
        resp.content_type = falcon.MEDIA_JSON
        self.metrics.predicted(answers, input_kind(info) if info else "array")


class StaticJSON:
    """A GET route whose JSON body is fixed at start-up; with ``failure`` set it answers 503 instead.

    Serves the probes, /v1/model, /openapi.json and the OIP metadata routes.
    """

    def __init__(self, body: dict, failure: str | None = None):
        self.body, self.failure = _json(body), failure

    def on_get(self, req, resp):
        if self.failure:
            raise NotReady(self.failure)
        resp.data = self.body
        resp.content_type = falcon.MEDIA_JSON


class MetricsText:
    """GET /metrics: Prometheus text format, merged over all gunicorn workers."""

    def __init__(self, metrics):
        self.metrics = metrics

    def on_get(self, req, resp):
        resp.data = self.metrics.render()
        resp.content_type = METRICS_CONTENT_TYPE


def describe_public(predictor, settings) -> dict:
    """The public /v1/model: what a client needs (identity, layer sizes, the input limits, the calibration
    and reject thresholds its answers follow) and the test accuracy the page shows; training config, data
    hashes and per-class metrics stay on the admin port."""
    full = describe(predictor, settings)
    accuracy = (full.get("training_metrics") or {}).get("test_accuracy")
    return {"name": full["name"], "version": full["version"], "sha256": full["sha256"],
            "layer_sizes": full["layer_sizes"], "calibration": full.get("calibration"),
            "training_metrics": {} if accuracy is None else {"test_accuracy": accuracy},
            "input": full["input"], "output": full["output"]}


def describe(predictor, settings) -> dict:
    """The full model description (admin port): the model's identity, architecture and training, and the
    input spec."""
    return {
        "name": settings.model_name,
        **predictor.describe(),
        "corruption_detector": True,
        "input": {
            "image": {"content_types": ["multipart/form-data (field 'file')", "image/png", "image/jpeg",
                                        "image/gif", "image/bmp", "image/webp", "image/tiff",
                                        "application/octet-stream"],
                      "max_body_bytes": settings.max_body_bytes,
                      "max_image_side": settings.max_image_side,
                      "preprocessing": "mnistlite.images.preprocess.preprocess_image: grayscale, invert a "
                                       "light background, crop to the ink, scale to 20 px, centre by mass "
                                       "in 28x28"},
            "json": {"content_type": "application/json", "body": {"instances": "list of images"},
                     "image_shapes": [[784], [28, 28]], "value_range": [0, 1],
                     "max_batch": settings.max_batch, "max_body_bytes": settings.max_json_bytes},
        },
        "output": {"classes": list(range(predictor.n_classes))},
    }
