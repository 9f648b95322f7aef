"""TensorFlow Serving's REST shape, which KServe's v1 protocol shares: ``POST /v1/models/{name}:predict``
and ``GET /v1/models/{name}`` (the model's status).

A predict request holds ``{"instances": [...]}`` (row format) or ``{"inputs": [...]}`` (columnar: the
list itself, or ``{"input": [...]}`` for the one named input), and is answered with
``{"predictions": [...]}``: the same answers, limits and errors as ``POST /predict`` with JSON.
"""
from __future__ import annotations

import falcon

from .errors import InputError
from .parsing import json_body, pixels
from .resources import StaticJSON, media_json

# TF Serving reads every body as JSON whatever its type, and its documented curl -d sends a form type.
UNTYPED_JSON = frozenset({"", "application/x-www-form-urlencoded"})


def _values(doc):
    """(the images, what to call them in errors) of a predict request."""
    if not isinstance(doc, dict):
        raise InputError('the body must be a JSON object {"instances": [...]} or {"inputs": [...]}')
    if "signature_name" in doc and not isinstance(doc["signature_name"], str):
        raise InputError(f"signature_name must be a string, got {type(doc['signature_name']).__name__}")
    if ("instances" in doc) == ("inputs" in doc):
        raise InputError('the body must hold exactly one of "instances" (row format) and "inputs" '
                         '(columnar format)')
    if "instances" in doc:
        return doc["instances"], "instances"
    inputs = doc["inputs"]
    if isinstance(inputs, dict):  # columnar with the input named: {"inputs": {"input": [...]}}
        if len(inputs) != 1:
            raise InputError(f'"inputs" names {len(inputs)} tensors; the model has one input, '
                             f'send {{"inputs": {{"input": [...]}}}} or {{"inputs": [...]}}')
        (inputs,) = inputs.values()
    return inputs, "inputs"


class Predict:
    """POST /v1/models/{name}:predict."""

    def __init__(self, predictor, metrics, settings):
        self.predictor, self.metrics, self.settings = predictor, metrics, settings

    def on_post(self, req, resp):
        values, what = _values(json_body(req, self.settings, also_types=UNTYPED_JSON))
        answers = self.predictor.predict(pixels(values, what, self.settings.max_batch))
        resp.data = media_json({"predictions": answers})
        resp.content_type = falcon.MEDIA_JSON
        self.metrics.predicted(answers)


def status(predictor, failure: str | None) -> dict:
    """GET /v1/models/{name} in TF Serving's shape; a model that failed its self-test is not AVAILABLE."""
    state, code = ("END", "UNAVAILABLE") if failure else ("AVAILABLE", "OK")
    return {"model_version_status": [{"version": predictor.version, "state": state,
                                      "status": {"error_code": code, "error_message": failure or ""}}]}


def add_routes(app: falcon.App, predictor, metrics, settings, failure: str | None) -> None:
    """Mount the TF Serving routes for the model named ``settings.model_name``."""
    name = settings.model_name
    app.add_route(f"/v1/models/{name}", StaticJSON(status(predictor, failure)))
    app.add_route(f"/v1/models/{name}:predict", Predict(predictor, metrics, settings))
