"""The service's other routes through falcon.testing with a fake predictor: probes, /v1/model,
/openapi.json, the access log, /metrics and the Open Inference Protocol."""
from __future__ import annotations

import json

import numpy as np
from falcon import testing

from service.app import create_app
from service.settings import Settings

# ---- probes and descriptions ----------------------------------------------------------------

def test_liveness_and_readiness(client, fake):
    assert client.simulate_get("/liveness").json == {"status": "alive"}
    r = client.simulate_get("/readiness")
    assert r.status_code == 200
    assert r.json == {"status": "ready", "model_version": fake.version}


def test_a_failed_self_test_makes_every_readiness_route_503(make_fake, error_of):
    c = testing.TestClient(create_app(make_fake("self-test digit 6 predicted as 0"),
                                      settings=Settings(access_log=False)))
    for path in ("/readiness", "/v2/health/ready", "/v2/models/mnistlite/ready"):
        body = error_of(c.simulate_get(path), 503)
        assert body["description"] == "self-test digit 6 predicted as 0"
    assert c.simulate_get("/liveness").status_code == 200
    assert c.simulate_get("/v2/health/live").json == {"live": True}


def test_model_info(client, admin_client, fake):
    info = admin_client.simulate_get("/v1/model").json  # the full description: admin port only
    assert info["name"] == "mnistlite"
    assert {k: info[k] for k in fake.describe()} == fake.describe()  # the model's own part, whole
    assert info["input"]["image"]["max_image_side"] == 4096
    assert info["input"]["image"]["max_body_bytes"] == 16 << 20
    assert info["input"]["json"]["max_batch"] == 1000
    assert info["output"] == {"classes": list(range(10))} and info["corruption_detector"] is True
    public = client.simulate_get("/v1/model").json  # what a client needs, and the page's accuracy
    assert set(public) == {"name", "version", "sha256", "layer_sizes", "calibration", "training_metrics",
                           "input", "output"}
    assert public["training_metrics"] == {"test_accuracy": 0.5}
    assert {k: public[k] for k in ("version", "sha256", "layer_sizes", "input", "output")} == \
        {k: info[k] for k in ("version", "sha256", "layer_sizes", "input", "output")}
    settings = Settings(model_name="digits", max_batch=7, access_log=False)
    named = testing.TestClient(create_app(fake, settings=settings))
    info = named.simulate_get("/v1/model").json
    assert info["name"] == "digits" and info["input"]["json"]["max_batch"] == 7


def test_public_app_has_no_metrics_and_every_response_says_nosniff(client, admin_client):
    assert client.simulate_get("/metrics").status_code == 404
    assert admin_client.simulate_get("/predict").status_code == 404
    for c, path in ((client, "/liveness"), (client, "/nope"), (admin_client, "/metrics"), (client, "/")):
        assert c.simulate_get(path).headers["x-content-type-options"] == "nosniff", path
    r = client.simulate_post("/predict", body=b"<script>", headers={"Content-Type": "image/png"})
    assert r.status_code == 400 and r.headers["x-content-type-options"] == "nosniff"


def test_openapi_lists_every_route(client):
    doc = client.simulate_get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/", "/predict", "/liveness", "/readiness", "/v1/model", "/openapi.json", "/v2",
        "/v2/health/live", "/v2/health/ready", "/v2/models/mnistlite", "/v2/models/mnistlite/ready",
        "/v2/models/mnistlite/infer", "/v1/models/mnistlite:predict", "/v1/models/mnistlite"}
    for path in doc["paths"]:  # each documented GET answers
        if "get" in doc["paths"][path]:
            assert client.simulate_get(path).status_code == 200, path


# ---- access log, metrics --------------------------------------------------------------------

def test_access_log_is_one_json_line_per_request(client, log):
    before = log.getvalue().count("\n")
    client.simulate_get("/liveness", headers={"X-Request-ID": "log-me"})
    client.simulate_post("/predict", body=b"x", headers={"Content-Type": "text/plain"})
    lines = log.getvalue().splitlines()[before:]
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert first["request_id"] == "log-me" and first["path"] == "/liveness" and first["status"] == 200
    assert second["method"] == "POST" and second["status"] == 415 and second["duration_ms"] >= 0


def test_access_log_escapes_odd_paths_like_json_dumps(client, log):
    before = log.getvalue().count("\n")
    path = '/odd"\\path\u00e9\u2028'
    client.simulate_get(path)
    line = log.getvalue().splitlines()[before]
    assert json.loads(line)["path"] == path
    assert '"path":' + json.dumps(path) + "," in line



def metric(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + ("{" + want + "}" if want else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_counters_move(client, admin_client, fake, digits, to_png):
    before = admin_client.simulate_get("/metrics").text
    r = client.simulate_post("/predict", body=to_png(digits[3]), headers={"Content-Type": "image/png"})
    answer = r.json
    client.simulate_get("/predict")
    r = admin_client.simulate_get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    after = r.text

    def moved(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert moved("mnistlite_http_requests_total", route="/predict", status="200") == 1
    assert moved("mnistlite_http_requests_total", route="/predict", status="405") == 1
    assert moved("mnistlite_predictions_total", **{"class": str(answer["predicted_class"])}) == 1
    assert moved("mnistlite_http_request_duration_seconds_count", route="/predict") > 0
    for c in range(10):  # every class is listed from the start, zeros included
        assert f'mnistlite_predictions_total{{class="{c}"}}' in after
    assert (f'mnistlite_model_info{{layer_sizes="784-10",name="mnistlite",sha256="{fake.sha256}",'
            f'version="{fake.version}"}} 1.0') in after


# ---- Open Inference Protocol ----------------------------------------------------------------

def test_oip_health_and_metadata(client, fake):
    assert client.simulate_get("/v2/health/live").json == {"live": True}
    assert client.simulate_get("/v2/health/ready").json == {"ready": True}
    assert client.simulate_get("/v2/models/mnistlite/ready").json["ready"] is True
    meta = client.simulate_get("/v2/models/mnistlite").json
    assert meta["name"] == "mnistlite" and meta["versions"] == [fake.version]
    # Each tensor is named once: one canonical input; the other accepted forms are in its parameters.
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [("input", "FP32", [-1, 784])]
    accepts = meta["inputs"][0]["parameters"]
    assert "UINT8" in accepts["accepts_datatypes"] and "[-1, 28, 28]" in accepts["accepts_shapes"]
    assert all(isinstance(v, str) for v in accepts.values())
    # The outputs are the answer's fields, each named once.
    outputs = {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]}
    assert outputs == {"predicted_class": ("INT64", [-1]), "confidence": ("FP32", [-1]),
                       "probabilities": ("FP32", [-1, 10]), "abstain": ("BOOL", [-1])}
    server = client.simulate_get("/v2").json
    assert server["name"] == "mnistlite" and "binary_tensor_data" in server["extensions"]


def test_oip_infer_fp32_and_uint8(client, fake, digits):
    x = digits
    req = {"id": "r1", "inputs": [{"name": "input", "shape": [3, 784], "datatype": "FP32",
                                   "data": (x[:3] / 255).ravel().tolist()}]}
    r = client.simulate_post("/v2/models/mnistlite/infer", json=req)
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json["outputs"]}
    assert r.json["id"] == "r1" and r.json["model_name"] == "mnistlite"
    assert out["probabilities"]["shape"] == [3, 10] and len(out["probabilities"]["data"]) == 30
    classes = out["predicted_class"]["data"]
    expected = [fake.answer(row) for row in (x[:3] / 255).reshape(3, 784)]
    assert classes == [a["predicted_class"] for a in expected] and r.json["model_version"] == fake.version
    assert out["probabilities"]["data"] == [v for a in expected for v in a["probabilities"]]
    np.testing.assert_array_equal(fake.seen[-1], (x[:3] / 255).reshape(3, 784).astype(np.float32))
    req = {"inputs": [{"name": "input", "shape": [3, 28, 28], "datatype": "UINT8", "data": x[:3].tolist()}],
           "outputs": [{"name": "predicted_class"}]}
    r = client.simulate_post("/v2/models/mnistlite/infer", json=req)
    assert [o["name"] for o in r.json["outputs"]] == ["predicted_class"]
    assert r.json["outputs"][0]["data"] == classes
