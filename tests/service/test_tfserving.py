"""TF Serving's REST shape (KServe v1), in-process around the fake predictor: the same predictions,
limits and errors as POST /predict with JSON, and the model status in TF Serving's shape."""
from __future__ import annotations

import json

import pytest
from falcon import testing

from service.app import create_app
from service.settings import Settings

PREDICT = "/v1/models/mnistlite:predict"


@pytest.fixture(scope="module")
def tight(fake):
    settings = Settings(max_json_bytes=40000, max_batch=3, access_log=False)
    return testing.TestClient(create_app(fake, settings=settings))


def test_predictions_are_the_answers_of_predict(quiet_client, digits):
    images = (digits[:4] / 255).tolist()  # 28x28 nested lists
    expected = quiet_client.simulate_post("/predict", json={"instances": images}).json
    for doc in ({"instances": images}, {"signature_name": "serving_default", "instances": images},
                {"inputs": images}, {"inputs": {"input": images}}):
        r = quiet_client.simulate_post(PREDICT, json=doc)
        assert r.status_code == 200, (doc.keys(), r.text)
        assert r.json == expected and len(expected["predictions"]) == 4


def test_untyped_and_form_typed_json_are_read_like_tf_serving(quiet_client, digits):
    body = json.dumps({"instances": (digits[:1] / 255).tolist()})
    for headers in ({}, {"Content-Type": "application/x-www-form-urlencoded"}):  # requests data=, curl -d
        r = quiet_client.simulate_post(PREDICT, body=body, headers=headers)
        assert r.status_code == 200 and len(r.json["predictions"]) == 1


@pytest.mark.parametrize("doc, status, reason", [
    ({"instances": [[0] * 784] * 4}, 400, "limit is 3"),
    ({"instances": [[0.123456] * 784] * 10}, 413, ""),
    ({"instances": [[2] * 784]}, 400, "[0, 1]"),
    ({"instances": [[0] * 783]}, 400, "784 numbers"),
    ({"instances": []}, 400, "non-empty"),
    ({"instances": [[0] * 784], "inputs": [[0] * 784]}, 400, "exactly one of"),
    ({}, 400, "exactly one of"),
    ({"inputs": {"a": [[0] * 784], "b": [[0] * 784]}}, 400, "one input"),
    ({"instances": [[0] * 784], "signature_name": 3}, 400, "signature_name"),
    ([[0] * 784], 400, "JSON object"),
])
def test_errors_and_limits_are_those_of_predict(tight, error_of, doc, status, reason):
    e = error_of(tight.simulate_post(PREDICT, json=doc), status)
    assert reason in e["description"] and e["error"] == e["description"]
    if isinstance(doc, dict) and list(doc) == ["instances"]:  # the same refusal as /predict's
        assert error_of(tight.simulate_post("/predict", json=doc), status)["description"] == e["description"]


def test_other_content_types_are_415(quiet_client, error_of):
    r = quiet_client.simulate_post(PREDICT, body=b"\x89PNG", headers={"Content-Type": "image/png"})
    error_of(r, 415)


def test_status_in_tf_serving_shape(quiet_client, fake, make_fake):
    assert quiet_client.simulate_get("/v1/models/mnistlite").json == {"model_version_status": [
        {"version": fake.version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    broken = testing.TestClient(create_app(make_fake("self-test failed: boom"),
                                           settings=Settings(access_log=False)))
    (status,) = broken.simulate_get("/v1/models/mnistlite").json["model_version_status"]
    assert status["state"] != "AVAILABLE" and "boom" in status["status"]["error_message"]
    assert quiet_client.simulate_get("/v1/model").json["name"] == "mnistlite"  # the old route stays
