"""Open Inference Protocol (KServe v2 / Triton): health, server and model metadata, and infer with JSON
or binary tensors in and out, as ``tritonclient.http`` sends them with its defaults.

One input, named ``input`` in the metadata: FP32 in [0, 1] or UINT8 in 0..255, shape [n, 784] or
[n, 28, 28], ``data`` flat or nested (or binary). One output per answer field (``answer_tensors``).
"""
from __future__ import annotations

import json

import falcon
import numpy as np

import mnistlite

from . import oip_binary, oip_request
from .answer_tensors import probe_outputs
from .parsing import pixels
from .resources import StaticJSON, media_json

INPUT_SHAPES = ([-1, 784], [-1, 28, 28])
# What the metadata's single input entry says the server also accepts (OIP parameter values are strings).
ACCEPTS = {"datatypes": "FP32 (values in [0, 1]) or UINT8 (values 0..255)",
           "shapes": "[-1, 784] or [-1, 28, 28]",
           "data": "JSON data, flat or nested, or binary tensor data (parameters.binary_data_size)",
           "name": "any name: the model has this one input"}


class Outputs:
    """The model's output tensors, probed on first use: ``create_app`` predicts nothing but its self-test."""

    def __init__(self, predictor):
        self.predictor, self._by_name = predictor, None

    def by_name(self) -> dict:
        if self._by_name is None:
            self._by_name = {o.name: o for o in probe_outputs(self.predictor)}
        return self._by_name


class Metadata:
    """GET /v2/models/{name}: built on the first request, then served as bytes."""

    def __init__(self, name: str, predictor, outputs: Outputs):
        self.name, self.predictor, self.outputs, self.body = name, predictor, outputs, None

    def on_get(self, req, resp):
        if self.body is None:
            self.body = media_json(metadata(self.name, self.predictor, self.outputs.by_name().values()))
        resp.data, resp.content_type = self.body, falcon.MEDIA_JSON


class Infer:
    """POST /v2/models/{name}/infer."""

    def __init__(self, predictor, metrics, settings, outputs: Outputs):
        self.predictor, self.metrics, self.settings, self.outputs = predictor, metrics, settings, outputs

    def on_post(self, req, resp):
        doc, rest = oip_binary.read(req, self.settings)
        outputs = self.outputs.by_name()
        request = oip_request.parse(doc, tuple(outputs), self.settings.max_batch)
        answers = self.predictor.predict(self._input(request.input, rest))
        wanted = request.outputs or tuple((name, request.binary_output) for name in outputs)
        tensors, payload = [], []
        for name, binary in wanted:
            if binary:
                head, raw = outputs[name].binary(answers)
                tensors.append(head)
                payload.append(raw)
            else:
                tensors.append(outputs[name].json(answers))
        body = {"model_name": self.settings.model_name, "model_version": self.predictor.version,
                "outputs": tensors}
        if request.id is not None:
            body["id"] = request.id
        warnings = [a["warnings"][0] if "warnings" in a else None for a in answers]
        if any(warnings):   # OIP parameter values are scalars: the per-image list travels as a JSON string
            body["parameters"] = {"warnings": json.dumps(warnings)}
        oip_binary.respond(resp, body, payload)
        self.metrics.predicted(answers)

    def _input(self, t: oip_request.InputTensor, rest) -> np.ndarray:
        scale = oip_request.DATATYPES[t.datatype]
        if t.binary_size is None:
            oip_binary.no_trailing_bytes(rest)
            values = t.data
        else:
            values = oip_binary.input_array(t.datatype, t.shape, t.binary_size, rest)
        x = pixels(values, "data", self.settings.max_batch, scale=scale, shape=t.shape)
        return x.reshape(t.shape[0], 784)


def metadata(name: str, predictor, outputs) -> dict:
    """The model metadata: one canonical input, the other accepted forms in its parameters."""
    return {
        "name": name,
        "versions": [predictor.version],
        "platform": "mnistlite_numpy",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": INPUT_SHAPES[0],
                    "parameters": {f"accepts_{k}": v for k, v in ACCEPTS.items()}}],
        "outputs": [o.metadata() for o in outputs],
    }


def add_routes(app: falcon.App, predictor, metrics, settings, failure: str | None) -> None:
    """Mount the OIP routes for the model named ``settings.model_name``."""
    name = settings.model_name
    outputs = Outputs(predictor)
    server = {"name": "mnistlite", "version": mnistlite.__version__, "extensions": ["binary_tensor_data"]}
    app.add_route("/v2", StaticJSON(server))
    app.add_route("/v2/health/live", StaticJSON({"live": True}))
    app.add_route("/v2/health/ready", StaticJSON({"ready": True}, failure))
    app.add_route(f"/v2/models/{name}", Metadata(name, predictor, outputs))
    app.add_route(f"/v2/models/{name}/ready", StaticJSON({"name": name, "ready": True}, failure))
    app.add_route(f"/v2/models/{name}/infer", Infer(predictor, metrics, settings, outputs))
