"""OIP infer as clients send it, in-process around the fake predictor: no Content-Type, the binary tensor
data extension in and out, every request field type-checked, and answer fields flowing into outputs."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from falcon import testing

from service.app import create_app
from service.settings import Settings

INFER = "/v2/models/mnistlite/infer"
HEADER = "Inference-Header-Content-Length"


def binary_request(doc: dict, *tensors: bytes) -> tuple[bytes, dict]:
    head = json.dumps(doc).encode()
    return head + b"".join(tensors), {HEADER: str(len(head))}


def split(r) -> tuple[dict, bytes]:
    """(JSON header, binary part) of an infer response."""
    n = int(r.headers[HEADER.lower()])
    return json.loads(r.content[:n]), r.content[n:]


def binary_outputs(r) -> dict:
    """{name: numpy array} of an infer response's binary outputs."""
    head, rest = split(r)
    out, at = {}, 0
    dtypes = {"FP32": "<f4", "INT64": "<i8", "BOOL": "?"}
    for t in head["outputs"]:
        size = t["parameters"]["binary_data_size"]
        raw, at = rest[at:at + size], at + size
        if t["datatype"] == "BYTES":
            values, i = [], 0
            while i < len(raw):
                (k,) = struct.unpack_from("<I", raw, i)
                values.append(raw[i + 4:i + 4 + k].decode())
                i += 4 + k
            out[t["name"]] = values
        else:
            out[t["name"]] = np.frombuffer(raw, dtypes[t["datatype"]]).reshape(t["shape"])
    assert at == len(rest)
    return out


def test_json_without_content_type_is_read_as_json(quiet_client, fake, digits):
    x = digits[:2].reshape(2, 784) / 255
    doc = {"inputs": [{"name": "input", "shape": [2, 784], "datatype": "FP32", "data": x.ravel().tolist()}]}
    r = quiet_client.simulate_post(INFER, body=json.dumps(doc))
    assert r.status_code == 200, r.text
    out = {o["name"]: o["data"] for o in r.json["outputs"]}
    assert out["predicted_class"] == [fake.answer(row)["predicted_class"] for row in x]


@pytest.mark.parametrize("datatype, scale, content_type", [("FP32", 255.0, None), ("UINT8", 1, None),
                                                           ("FP32", 255.0, "application/octet-stream")])
def test_binary_input_and_output_match_json(quiet_client, fake, digits, datatype, scale, content_type):
    x = digits[:5]
    arr = (x / scale).astype("<f4") if datatype == "FP32" else x.astype(np.uint8)
    doc = {"id": "b1", "inputs": [{"name": "input", "shape": [5, 28, 28], "datatype": datatype,
                                   "parameters": {"binary_data_size": arr.nbytes}}],
           "parameters": {"binary_data_output": True}}
    body, headers = binary_request(doc, arr.tobytes())
    if content_type:
        headers["Content-Type"] = content_type
    r = quiet_client.simulate_post(INFER, body=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    np.testing.assert_allclose(fake.seen[-1], x.reshape(5, 784) / 255, rtol=1e-6)  # UINT8: x * (1/255)
    out = binary_outputs(r)
    expected = [fake.answer(row) for row in fake.seen[-1]]
    assert out["predicted_class"].tolist() == [a["predicted_class"] for a in expected]
    np.testing.assert_array_equal(out["probabilities"],
                                  np.array([a["probabilities"] for a in expected], np.float32))
    np.testing.assert_array_equal(out["confidence"], np.float32(0.91))
    assert split(r)[0]["id"] == "b1"


def test_outputs_choose_binary_or_json_one_by_one(quiet_client, digits):
    arr = digits[:3].astype(np.uint8)
    doc = {"inputs": [{"name": "input", "shape": [3, 784], "datatype": "UINT8",
                       "parameters": {"binary_data_size": arr.nbytes}}],
           "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}},
                       {"name": "predicted_class"}]}
    body, headers = binary_request(doc, arr.tobytes())
    r = quiet_client.simulate_post(INFER, body=body, headers=headers)
    head, rest = split(r)
    probs, classes = head["outputs"]
    assert probs["parameters"]["binary_data_size"] == len(rest) == 3 * 10 * 4 and "data" not in probs
    assert classes["name"] == "predicted_class" and len(classes["data"]) == 3
    # JSON in, JSON out unless asked: no header, a JSON body
    doc = {"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": [0] * 784}]}
    r = quiet_client.simulate_post(INFER, json=doc)
    assert HEADER.lower() not in r.headers and r.json["outputs"][0]["data"] is not None


@pytest.mark.parametrize("doc_tensor, payload, headers, status, reason", [
    ({"parameters": {"binary_data_size": 784 * 4}}, b"\0" * (784 * 4 - 1), {}, 400, "bytes follow"),
    ({"parameters": {"binary_data_size": 784}}, b"\0" * 784, {}, 400, "takes 3136 bytes"),
    ({"parameters": {"binary_data_size": -1}}, b"", {}, 400, "binary_data_size must be an integer"),
    ({"parameters": {"binary_data_size": "3136"}}, b"\0" * 3136, {}, 400, "binary_data_size must be"),
    ({"data": [0] * 784}, b"\0" * 8, {}, 400, "no input has parameters.binary_data_size"),
    ({"data": [0] * 784, "parameters": {"binary_data_size": 3136}}, b"\0" * 3136, {}, 400, "both data"),
    ({"parameters": {"binary_data_size": 3136}}, b"\xff" * 3136, {}, 400, "NaN or infinite"),
    ({"parameters": {"binary_data_size": 3136}}, b"\0" * 3136, {HEADER: "x1"}, 400, HEADER),
    ({"parameters": {"binary_data_size": 3136}}, b"\0" * 3136, {HEADER: "999999"}, 400, HEADER),
    ({"parameters": {"binary_data_size": 3136}}, b"\0" * 3136, {"Content-Encoding": "gzip"}, 415, "gzip"),
    ({"parameters": {"binary_data_size": 3136}}, b"\0" * 3136, {"Content-Type": "text/plain"}, 415,
     "text/plain"),
    ({"parameters": {"shared_memory_region": "r"}}, b"", {}, 400, "shared memory is not supported"),
])
def test_bad_binary_requests_are_4xx_naming_the_problem(quiet_client, error_of, doc_tensor, payload, headers,
                                                         status, reason):
    doc = {"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", **doc_tensor}]}
    body, h = binary_request(doc, payload)
    r = quiet_client.simulate_post(INFER, body=body, headers={**h, **headers})
    e = error_of(r, status)
    assert reason in e["error"], e


def test_octet_stream_needs_the_header(quiet_client, error_of):
    r = quiet_client.simulate_post(INFER, body=b"{}", headers={"Content-Type": "application/octet-stream"})
    assert HEADER in error_of(r, 400)["error"]


@pytest.mark.parametrize("doc, reason", [
    ({"inputs": [{"name": "input", "datatype": [], "shape": [1, 784], "data": [0] * 784}]}, "datatype"),
    ({"inputs": [{"name": "input", "datatype": {}, "shape": [1, 784], "data": [0] * 784}]}, "datatype"),
    ({"inputs": [{"name": ["input"], "datatype": "FP32", "shape": [1, 784], "data": [0] * 784}]}, "name"),
    ({"inputs": [{"datatype": "FP32", "shape": [1, 784], "data": [0] * 784}]}, "name"),
    ({"inputs": [{"name": "i", "datatype": "FP32", "shape": [True, 784], "data": [0] * 784}]}, "shape"),
    ({"inputs": [{"name": "i", "datatype": "FP32", "shape": "1,784", "data": [0] * 784}]}, "shape"),
    ({"inputs": [{"name": "i", "datatype": "FP32", "shape": [1, 784], "data": [0] * 784, "parameters": []}]},
     "parameters must be an object"),
    ({"inputs": [{"name": "i", "datatype": "FP32", "shape": [1, 784], "data": [0] * 784,
                  "parameters": {"x": [1]}}]}, "boolean, number or string"),
    ({"outputs": [{"name": []}]}, "outputs[0].name must be a string"),
    ({"outputs": [{"name": {"a": 1}}]}, "outputs[0].name must be a string"),
    ({"outputs": [{}]}, "outputs[0].name must be a string"),
    ({"outputs": [{"name": "predicted_class"}, {"name": "predicted_class"}]}, "twice"),
    ({"outputs": [{"name": "predicted_class", "parameters": {"binary_data": "yes"}}]}, "true or false"),
    ({"outputs": [{"name": "predicted_class", "parameters": {"classification": 3}}]}, "classification"),
    ({"outputs": {"name": "predicted_class"}}, '"outputs" must be a list'),
    ({"outputs": None}, '"outputs" must be a list'),
    ({"id": 7}, "id must be a string"),
    ({"id": None}, "id must be a string"),
    ({"parameters": "binary"}, "request.parameters must be an object"),
    ({"parameters": {"binary_data_output": 1}}, "binary_data_output must be true or false"),
])
def test_every_field_is_type_checked(quiet_client, error_of, doc, reason):
    base = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784], "data": [0] * 784}]}
    r = quiet_client.simulate_post(INFER, json={**base, **doc})
    assert reason in error_of(r, 400)["error"]


class AbstainingFake:
    """Wraps the fake predictor's answers with fields a later answer builder may add: every field of
    the answer must reach the OIP outputs and the metadata without code in the OIP routes."""

    def __init__(self, fake):
        self.fake = fake
        for k in ("version", "sha256", "layer_sizes", "n_classes", "describe", "self_test", "predict_images"):
            setattr(self, k, getattr(fake, k))

    def predict(self, x):
        answers = self.fake.predict(x)
        for a in answers:
            a["abstain"] = a["predicted_class"] == 0
            if a["abstain"]:
                a["abstain_reason"] = "not_a_digit"
        return answers


def test_new_answer_fields_flow_into_outputs(fake, digits):
    client = testing.TestClient(create_app(AbstainingFake(fake), settings=Settings(access_log=False)))
    meta = {o["name"]: o["datatype"] for o in client.simulate_get("/v2/models/mnistlite").json["outputs"]}
    assert meta["abstain"] == "BOOL" and meta["abstain_reason"] == "BYTES"
    x = np.concatenate([np.zeros((1, 28, 28), np.uint8), digits[:2]])
    doc = {"inputs": [{"name": "input", "shape": [3, 28, 28], "datatype": "UINT8", "data": x.tolist()}]}
    out = {o["name"]: o["data"] for o in client.simulate_post(INFER, json=doc).json["outputs"]}
    classes = out["predicted_class"]
    assert out["abstain"] == [c == 0 for c in classes]
    assert out["abstain_reason"] == ["not_a_digit" if c == 0 else "" for c in classes]
    doc["parameters"] = {"binary_data_output": True}
    out = binary_outputs(client.simulate_post(INFER, json=doc))
    assert out["abstain"].tolist() == [c == 0 for c in classes]
    assert out["abstain_reason"] == ["not_a_digit" if c == 0 else "" for c in classes]
