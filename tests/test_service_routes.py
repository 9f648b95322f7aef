"""The service's other routes through falcon.testing: probes, /v1/model, /openapi.json, the access log,
/metrics and the Open Inference Protocol."""
from __future__ import annotations

import json

import pytest
from falcon import testing

import mnistlite as ml
from service.app import create_app
from service.settings import Settings

pytest.register_assert_rewrite("service_helpers")  # keep pytest's assert diffs in the shared helpers
from service_helpers import error_of, png  # noqa: E402

pytest_plugins = ["service_helpers"]  # its fixtures: digits, log, client


# ---- probes and descriptions ----------------------------------------------------------------

def test_liveness_and_readiness(client):
    assert client.simulate_get("/liveness").json == {"status": "alive"}
    r = client.simulate_get("/readiness")
    assert r.status_code == 200
    version = r.json["model_version"]
    assert r.json["status"] == "ready" and len(version) == 12 and int(version, 16) >= 0


def test_readiness_is_503_when_the_self_test_digit_is_wrong(small_model):
    broken = ml.MLP(small_model.layer_sizes, seed=0)
    for (W, b), (W0, b0) in zip(broken.weights, small_model.weights):
        W[...], b[...] = W0, b0
    broken.weights[-1][1][:] = 0
    broken.weights[-1][1][0] = 1000.0  # always "0"
    c = testing.TestClient(create_app(broken, settings=Settings(access_log=False)))
    for path in ("/readiness", "/v2/health/ready", "/v2/models/mnistlite/ready"):
        body = error_of(c.simulate_get(path), 503)
        assert "predicted as 0" in body["description"]
    assert c.simulate_get("/liveness").status_code == 200


def test_model_info(client, small_model_path):
    model = ml.load(small_model_path)
    c = testing.TestClient(create_app(model, settings=Settings(access_log=False)))
    info = c.simulate_get("/v1/model").json
    assert info["name"] == "mnistlite"
    assert info["sha256"] == model.sha256 and info["version"] == model.sha256[:12]
    assert info["layer_sizes"] == [784, 64, 10]
    assert info["created"] == model.metadata["created"]
    assert info["input"]["image"]["max_image_side"] == 4096
    assert info["input"]["json"]["max_batch"] == 1000
    assert "training_metrics" in info


def test_model_info_carries_training_metrics(small_model, tmp_path):
    path = ml.save(small_model, tmp_path / "m.npz", metadata={"metrics": {"test_accuracy": 0.96}})
    c = testing.TestClient(create_app(ml.load(path), settings=Settings(access_log=False)))
    assert c.simulate_get("/v1/model").json["training_metrics"] == {"test_accuracy": 0.96}


def test_openapi_lists_every_route(client):
    doc = client.simulate_get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/", "/predict", "/liveness", "/readiness", "/v1/model", "/metrics", "/openapi.json", "/v2",
        "/v2/health/live", "/v2/health/ready", "/v2/models/mnistlite", "/v2/models/mnistlite/ready",
        "/v2/models/mnistlite/infer"}
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


def test_metrics_counters_move(client, digits):
    x, y = digits
    before = client.simulate_get("/metrics").text
    client.simulate_post("/predict", body=png(x[3]), headers={"Content-Type": "image/png"})
    client.simulate_get("/predict")
    r = client.simulate_get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    after = r.text
    ok = dict(route="/predict", status="200")
    assert metric(after, "mnistlite_http_requests_total", **ok) == metric(before, "mnistlite_http_requests_total", **ok) + 1
    bad = dict(route="/predict", status="405")
    assert metric(after, "mnistlite_http_requests_total", **bad) == metric(before, "mnistlite_http_requests_total", **bad) + 1
    cls = {"class": str(y[3])}
    assert metric(after, "mnistlite_predictions_total", **cls) == metric(before, "mnistlite_predictions_total", **cls) + 1
    assert metric(after, "mnistlite_http_request_duration_seconds_count", route="/predict") > \
        metric(before, "mnistlite_http_request_duration_seconds_count", route="/predict")
    assert 'mnistlite_model_info{' in after


# ---- Open Inference Protocol ----------------------------------------------------------------

def test_oip_health_and_metadata(client):
    assert client.simulate_get("/v2/health/live").json == {"live": True}
    assert client.simulate_get("/v2/health/ready").json == {"ready": True}
    assert client.simulate_get("/v2/models/mnistlite/ready").json["ready"] is True
    meta = client.simulate_get("/v2/models/mnistlite").json
    assert meta["name"] == "mnistlite" and len(meta["versions"]) == 1
    assert {"FP32", "UINT8"} == {i["datatype"] for i in meta["inputs"]}
    assert client.simulate_get("/v2").json["name"] == "mnistlite"


def test_oip_infer_fp32_and_uint8(client, digits):
    x, y = digits
    req = {"id": "r1", "inputs": [{"name": "input", "shape": [3, 784], "datatype": "FP32",
                                   "data": (x[:3] / 255).ravel().tolist()}]}
    r = client.simulate_post("/v2/models/mnistlite/infer", json=req)
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json["outputs"]}
    assert r.json["id"] == "r1" and r.json["model_name"] == "mnistlite"
    assert out["probabilities"]["shape"] == [3, 10] and len(out["probabilities"]["data"]) == 30
    classes = out["predicted_class"]["data"]
    req = {"inputs": [{"name": "input", "shape": [3, 28, 28], "datatype": "UINT8", "data": x[:3].tolist()}],
           "outputs": [{"name": "predicted_class"}]}
    r = client.simulate_post("/v2/models/mnistlite/infer", json=req)
    assert [o["name"] for o in r.json["outputs"]] == ["predicted_class"]
    assert r.json["outputs"][0]["data"] == classes
