"""The OpenAPI 3 document of the service, built once at start-up from the live settings."""
from __future__ import annotations

import mnistlite

from . import openapi_protocols

_ERR = {"$ref": "#/components/schemas/Error"}


def _resp(description: str, schema=None, content_type: str = "application/json") -> dict:
    r = {"description": description}
    if schema is not None:
        r["content"] = {content_type: {"schema": schema}}
    return r


def _errors(*codes) -> dict:
    text = {400: "Bad input: not an image, truncated or empty, missing field, malformed JSON, wrong shape "
                 "or range",
            413: "Body over the byte limit, or image over the pixel limit", 415: "Unsupported Content-Type",
            503: "Not ready: the model failed its self-test"}
    return {str(c): _resp(text[c], _ERR) for c in codes}


def _get(summary: str, schema, *extra) -> dict:
    return {"get": {"summary": summary, "responses": {"200": _resp("OK", schema), **_errors(*extra)}}}


def document(settings, n_classes: int = 10) -> dict:
    """OpenAPI 3.0 description of every route, with the configured limits in the schemas."""
    number01 = {"type": "number", "minimum": 0, "maximum": 1}
    flat = {"type": "array", "items": number01, "minItems": 784, "maxItems": 784}
    square = {"type": "array", "minItems": 28, "maxItems": 28,
              "items": {"type": "array", "items": number01, "minItems": 28, "maxItems": 28}}
    probs = {"type": "array", "items": {"type": "number"}, "minItems": n_classes, "maxItems": n_classes}
    schemas = {
        "Error": {"type": "object", "required": ["title"],
                  "properties": {"title": {"type": "string"}, "description": {"type": "string"},
                                 "error": {"type": "string", "description": "OIP routes only"}}},
        "Prediction": {"type": "object",
                       "required": ["predicted_class", "confidence", "probabilities", "model_version",
                                    "abstain"],
                       "properties": {"predicted_class": {"type": "integer", "minimum": 0,
                                                          "maximum": n_classes - 1},
                                      "confidence": {"type": "number"}, "probabilities": probs,
                                      "model_version": {"type": "string"},
                                      "abstain": {"type": "boolean",
                                                  "description": "true: the service declines to name a "
                                                                 "digit (see abstain_reason)"},
                                      "abstain_reason": {"type": "string", "enum": ["not_a_digit", "unsure"],
                                                         "description": "present when abstain is true"},
                                      "reason": {"type": "string", "description": "present when abstain is "
                                                 "true: plain words, e.g. 'between 4 and 9'"},
                                      "warnings": {"type": "array", "items": {"type": "string"},
                                                   "description": "present when the input looks like noise"},
                                      "preprocessed_png": {
                                          "type": "string", "format": "byte",
                                          "description": "with ?explain=1: base64 PNG of the 28x28 image "
                                                         "the model saw"}}},
        "Predictions": {"type": "object", "required": ["predictions"],
                        "properties": {"predictions": {
                            "type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}}},
        "Instances": {"type": "object", "required": ["instances"],
                      "properties": {"instances": {"type": "array", "minItems": 1,
                                                   "maxItems": settings.max_batch,
                                                   "items": {"$ref": "#/components/schemas/Image"}}}},
        "Image": {"oneOf": [flat, square]},
        "Object": {"type": "object"},
    }
    obj = {"$ref": "#/components/schemas/Object"}
    name = settings.model_name
    image = {"type": "string", "format": "binary"}
    predict = {"post": {
        "summary": "Predict the digit in an image (multipart or raw body) or a JSON batch",
        "parameters": [{"name": "explain", "in": "query", "required": False,
                        "description": "true/1: each answer also carries preprocessed_png, the 28x28 "
                                       "grayscale image the model saw (after preprocessing) as a base64 PNG",
                        "schema": {"type": "boolean", "default": False}}],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": image}}},
            "image/png": {"schema": image}, "image/jpeg": {"schema": image},
            "application/octet-stream": {"schema": image},
            "application/json": {"schema": {"$ref": "#/components/schemas/Instances"}}}},
        "responses": {"200": _resp("One prediction (image) or {predictions: [...]} (JSON batch)",
                                   {"oneOf": [{"$ref": "#/components/schemas/Prediction"},
                                              {"$ref": "#/components/schemas/Predictions"}]}),
                      **_errors(400, 413, 415)}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "mnistlite prediction service", "version": mnistlite.__version__,
                 "description": (f"Handwritten digit recognition. Image bodies up to "
                                 f"{settings.max_body_bytes} bytes and {settings.max_image_side}x"
                                 f"{settings.max_image_side} pixels; JSON bodies up to "
                                 f"{settings.max_json_bytes} bytes and {settings.max_batch} images. "
                                 "Every response carries X-Request-ID.")},
        "paths": {
            "/predict": predict,
            "/liveness": _get("The process is up", obj),
            "/readiness": _get("The model is loaded and passed its self-test", obj, 503),
            "/v1/model": _get("The served model: version, sha256, layer sizes, test accuracy, input limits",
                              obj),
            "/openapi.json": _get("This document", obj),
            "/": {"get": {"summary": "The drawing page (HTML; its script and style sheet are under /static/)",
                          "responses": {"200": _resp("The page", {"type": "string"}, "text/html"),
                                        "304": {"description":
                                                "Not modified (If-None-Match matched the ETag)"}}}},
            "/v2": _get("OIP server metadata", obj),
            "/v2/health/live": _get("OIP liveness", obj),
            "/v2/health/ready": _get("OIP readiness", obj, 503),
            f"/v2/models/{name}": _get("OIP model metadata", obj),
            f"/v2/models/{name}/ready": _get("OIP model readiness", obj, 503),
            **openapi_protocols.paths(settings),  # OIP infer, TF Serving predict and status
        },
        "components": {"schemas": {**schemas, **openapi_protocols.schemas(settings)}},
    }
