"""Open Inference Protocol (KServe v2 / Triton) subset: health, server and model metadata, JSON infer.

One input tensor, FP32 in [0, 1] or UINT8 in 0..255, shape [n, 784] or [n, 28, 28], ``data`` flat
or nested; outputs ``probabilities`` (FP32 [n, k]), ``predicted_class`` (INT64 [n]), ``abstain`` (BOOL [n])
and ``abstain_reason`` (BYTES [n]).
"""
from __future__ import annotations

import falcon
import numpy as np

import mnistlite

from .errors import InputError
from .parsing import json_body, pixels
from .resources import StaticJSON

DATATYPES = {"FP32": 1.0, "UINT8": 255.0}  # datatype -> value range top, mapped onto [0, 1]
INPUT_SHAPES = ([-1, 784], [-1, 28, 28])


class Infer:
    """POST /v2/models/{name}/infer."""

    def __init__(self, predictor, metrics, settings):
        self.predictor, self.metrics, self.settings = predictor, metrics, settings
        self.outputs = ("probabilities", "predicted_class", "abstain", "abstain_reason")

    def on_post(self, req, resp):
        doc = json_body(req, self.settings)
        if not isinstance(doc, dict):
            raise InputError('the body must be an OIP inference request object {"inputs": [...]}')
        x = self._input(doc.get("inputs"))
        wanted = self._wanted(doc.get("outputs"))
        answers = self.predictor.predict(x)
        n, k = len(answers), self.predictor.n_classes
        outputs = []
        if "probabilities" in wanted:
            outputs.append({"name": "probabilities", "datatype": "FP32", "shape": [n, k],
                            "data": [v for a in answers for v in a["probabilities"]]})
        if "predicted_class" in wanted:
            outputs.append({"name": "predicted_class", "datatype": "INT64", "shape": [n],
                            "data": [a["predicted_class"] for a in answers]})
        outputs += honest_outputs(answers, wanted)
        body = {"model_name": self.settings.model_name, "model_version": self.predictor.version,
                "outputs": outputs}
        if isinstance(doc.get("id"), str):
            body["id"] = doc["id"]
        warnings = [a["warnings"][0] if "warnings" in a else None for a in answers]
        if any(warnings):
            body["parameters"] = {"warnings": warnings}
        resp.media = body
        self.metrics.predicted(answers)

    def _input(self, inputs) -> np.ndarray:
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise InputError('"inputs" must be a list of exactly one tensor object')
        t = inputs[0]
        dtype = t.get("datatype")
        if dtype not in DATATYPES:
            raise InputError(f"datatype must be one of {sorted(DATATYPES)}, got {dtype!r}")
        shape = t.get("shape")
        if not (isinstance(shape, list) and shape and all(type(s) is int for s in shape)
                and (shape[1:] == [784] or shape[1:] == [28, 28]) and shape[0] >= 1):
            raise InputError(f"shape must be [n, 784] or [n, 28, 28] with n >= 1, got {shape!r}")
        if shape[0] > self.settings.max_batch:
            raise InputError(f"batch of {shape[0]} is over the limit of {self.settings.max_batch}")
        if "parameters" in t and isinstance(t["parameters"], dict) and "binary_data_size" in t["parameters"]:
            raise InputError("binary tensor data is not supported; send the numbers in \"data\"")
        x = pixels(t.get("data"), "data", self.settings.max_batch, scale=DATATYPES[dtype], shape=shape)
        return x.reshape(shape[0], 784)

    def _wanted(self, outputs) -> set:
        if outputs is None:
            return set(self.outputs)
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise InputError('"outputs" must be a list of {"name": ...} objects')
        names = {o.get("name") for o in outputs}
        unknown = names - set(self.outputs)
        if unknown:
            raise InputError(f"unknown outputs {sorted(map(str, unknown))}; choose from {list(self.outputs)}")
        return names


def honest_outputs(answers, wanted) -> list:
    """The answers' abstentions as OIP outputs: ``abstain`` (BOOL [n]) and ``abstain_reason`` (BYTES [n]:
    "", "unsure" or "not_a_digit")."""
    n, out = len(answers), []
    if "abstain" in wanted:
        out.append({"name": "abstain", "datatype": "BOOL", "shape": [n],
                    "data": [bool(a.get("abstain")) for a in answers]})
    if "abstain_reason" in wanted:
        out.append({"name": "abstain_reason", "datatype": "BYTES", "shape": [n],
                    "data": [a.get("abstain_reason", "") for a in answers]})
    return out


def add_routes(app: falcon.App, predictor, metrics, settings, failure: str | None) -> None:
    """Mount the OIP routes for the model named ``settings.model_name``."""
    name = settings.model_name
    metadata = {
        "name": name,
        "versions": [predictor.version],
        "platform": "mnistlite_numpy",
        "inputs": [{"name": "input", "datatype": d, "shape": s} for d in DATATYPES for s in INPUT_SHAPES],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, predictor.n_classes]},
                    {"name": "predicted_class", "datatype": "INT64", "shape": [-1]},
                    {"name": "abstain", "datatype": "BOOL", "shape": [-1]},
                    {"name": "abstain_reason", "datatype": "BYTES", "shape": [-1]}],
    }
    server = {"name": "mnistlite", "version": mnistlite.__version__, "extensions": []}
    app.add_route("/v2", StaticJSON(server))
    app.add_route("/v2/health/live", StaticJSON({"live": True}))
    app.add_route("/v2/health/ready", StaticJSON({"ready": True}, failure))
    app.add_route(f"/v2/models/{name}", StaticJSON(metadata))
    app.add_route(f"/v2/models/{name}/ready", StaticJSON({"name": name, "ready": True}, failure))
    app.add_route(f"/v2/models/{name}/infer", Infer(predictor, metrics, settings))
