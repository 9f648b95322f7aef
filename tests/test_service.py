"""The prediction service through falcon.testing: every route, content type and error of issue 5."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from falcon import testing
from PIL import Image

import mnistlite as ml
from service.app import create_app
from service.settings import Settings

BOUNDARY = "----mnistlite-test-boundary"


def png(a: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def multipart(fields: dict, boundary: str = BOUNDARY) -> tuple[bytes, str]:
    """{name: bytes} -> (multipart/form-data body, content type); every field sent as a file."""
    out = b""
    for name, data in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def digits(mnist_uint8):
    """(images uint8 (n, 28, 28), labels): the first 20 test digits."""
    _, (x, y) = mnist_uint8
    return x[:20], y[:20]


@pytest.fixture(scope="module")
def log():
    return io.StringIO()


@pytest.fixture(scope="module")
def client(small_model, log):
    return testing.TestClient(create_app(small_model, log_stream=log))


@pytest.fixture(scope="module")
def tight(small_model):
    """An app with small limits, to hit them with small bodies."""
    settings = Settings(max_body_bytes=2000, max_json_bytes=40000, max_image_side=64, max_batch=3, access_log=False)
    return testing.TestClient(create_app(small_model, settings=settings))


def error_of(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json
    assert set(body) >= {"title"} and isinstance(body["title"], str)
    return body


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
        "/predict", "/liveness", "/readiness", "/v1/model", "/metrics", "/openapi.json", "/v2",
        "/v2/health/live", "/v2/health/ready", "/v2/models/mnistlite", "/v2/models/mnistlite/ready",
        "/v2/models/mnistlite/infer"}
    for path in doc["paths"]:  # each documented GET answers
        if "get" in doc["paths"][path]:
            assert client.simulate_get(path).status_code == 200, path


# ---- predictions ----------------------------------------------------------------------------

def check_answer(a: dict, version: str):
    assert set(a) >= {"predicted_class", "confidence", "probabilities", "model_version"}
    assert len(a["probabilities"]) == 10 and math.isclose(sum(a["probabilities"]), 1.0, abs_tol=1e-4)
    assert a["confidence"] == max(a["probabilities"]) == a["probabilities"][a["predicted_class"]]
    assert a["model_version"] == version


def test_predict_multipart_raw_png_and_jpeg(client, digits):
    x, y = digits
    version = client.simulate_get("/readiness").json["model_version"]
    body, ct = multipart({"file": png(255 - x[0])})
    r = client.simulate_post("/predict", body=body, headers={"Content-Type": ct})
    assert r.status_code == 200, r.text
    check_answer(r.json, version)
    assert r.json["predicted_class"] == y[0] and "warnings" not in r.json
    for fmt, ct in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("BMP", "application/octet-stream")):
        r = client.simulate_post("/predict", body=png(x[1], fmt), headers={"Content-Type": ct})
        assert r.status_code == 200, (fmt, r.text)
        assert r.json["predicted_class"] == y[1]


def test_multipart_file_field_found_among_others(client, digits):
    x, y = digits
    body, ct = multipart({"note": b"hello", "file": png(x[2])})
    r = client.simulate_post("/predict", body=body, headers={"Content-Type": ct})
    assert r.status_code == 200 and r.json["predicted_class"] == y[2]


def test_predict_json_flat_and_square(client, digits):
    x, y = digits
    flat = (x[:10].reshape(10, 784) / 255).tolist()
    r = client.simulate_post("/predict", json={"instances": flat})
    assert r.status_code == 200, r.text
    preds = r.json["predictions"]
    assert [p["predicted_class"] for p in preds] == small_predictions(client, x[:10])
    square = (x[:2] / 255).tolist()
    r2 = client.simulate_post("/predict", json={"instances": square})
    assert r2.json["predictions"] == preds[:2]


def small_predictions(client, images) -> list:
    """What the model says about these digits when sent one by one as JSON."""
    return [client.simulate_post("/predict", json={"instances": [(im / 255).ravel().tolist()]})
            .json["predictions"][0]["predicted_class"] for im in images]


def test_json_batch_of_1000(client, digits):
    x, _ = digits
    batch = np.tile(x.reshape(20, 784) / 255, (50, 1)).round(3).tolist()
    r = client.simulate_post("/predict", json={"instances": batch})
    assert r.status_code == 200 and len(r.json["predictions"]) == 1000


def test_noise_upload_gets_an_answer_with_a_warning(client):
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    r = client.simulate_post("/predict", body=png(noise), headers={"Content-Type": "image/png"})
    assert r.status_code == 200
    assert r.json["warnings"] and "noise" in r.json["warnings"][0]
    r = client.simulate_post("/predict", json={"instances": [(noise / 255).ravel().tolist()]})
    assert r.json["predictions"][0]["warnings"]


@pytest.fixture(scope="module")
def sample_digits(mnist_uint8):
    """MNIST training images 419-452 as an upload would look: raw, inverted, off-centre on a big canvas."""
    (x, y), _ = mnist_uint8
    x, y = x[419:453], y[419:453]
    variants = []
    for i, (im, label) in enumerate(zip(x, y)):
        canvas = np.full((60, 90), 255, np.uint8)
        top, left = 2 + i % 25, 3 + (7 * i) % 55
        canvas[top:top + 28, left:left + 28] = 255 - im
        variants += [(png(im), label), (png(255 - im), label), (png(canvas), label)]
    return variants


def test_sample_style_digits_are_predicted_correctly(reference_model, sample_digits):
    # The reference model (shared with the accuracy tests): the small one misses a couple of these.
    client = testing.TestClient(create_app(reference_model, settings=Settings(access_log=False)))
    wrong = []
    for i, (data, label) in enumerate(sample_digits):
        r = client.simulate_post("/predict", body=data, headers={"Content-Type": "image/png"})
        assert r.status_code == 200
        if r.json["predicted_class"] != label:
            wrong.append((419 + i // 3, ("raw", "inverted", "off-centre")[i % 3], label, r.json["predicted_class"]))
    assert len(sample_digits) == 102 and not wrong


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, reason", [
    (b"just some text\n", "not an image"),
    (b"", "empty"),
])
def test_bad_uploads_are_400(client, data, reason):
    body, ct = multipart({"file": data})
    e = error_of(client.simulate_post("/predict", body=body, headers={"Content-Type": ct}), 400)
    assert reason in e["description"]


def test_truncated_image_is_400(client, digits):
    data = png(digits[0][0])
    r = client.simulate_post("/predict", body=data[: len(data) // 2], headers={"Content-Type": "image/png"})
    assert "truncated" in error_of(r, 400)["description"]


def test_empty_raw_body_is_400(client):
    error_of(client.simulate_post("/predict", body=b"", headers={"Content-Type": "image/png"}), 400)


def test_missing_file_field_and_malformed_multipart_are_400(client):
    body, ct = multipart({"image": b"x"})
    e = error_of(client.simulate_post("/predict", body=body, headers={"Content-Type": ct}), 400)
    assert "'file'" in e["description"] and "image" in e["description"]
    for body, ct in ((b"garbage", f"multipart/form-data; boundary={BOUNDARY}"),
                     (b"garbage", "multipart/form-data"),
                     (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc".encode(),
                      f"multipart/form-data; boundary={BOUNDARY}")):
        error_of(client.simulate_post("/predict", body=body, headers={"Content-Type": ct}), 400)


@pytest.mark.parametrize("ct", ["text/plain", "application/x-www-form-urlencoded", "image/svg+xml", None])
def test_unsupported_content_type_is_415(client, ct):
    headers = {"Content-Type": ct} if ct else {}
    e = error_of(client.simulate_post("/predict", body=b"abc", headers=headers), 415)
    assert "image/png" in e["description"]


def test_body_over_limit_is_413_without_reading_it(tight):
    class Unreadable(io.BytesIO):
        def read(self, *a):
            raise AssertionError("the body must not be read")

    r = tight.simulate_request("POST", "/predict", headers={"Content-Type": "image/png", "Content-Length": "5000"},
                               extras={"wsgi.input": Unreadable()})
    assert "2000" in error_of(r, 413)["description"]
    r = tight.simulate_post("/predict", body=b"\0" * 2001, headers={"Content-Type": "image/png"})
    error_of(r, 413)


def test_chunked_body_over_limit_is_413(tight, digits):
    env = {"wsgi.input": io.BytesIO(b"\0" * 5000), "wsgi.input_terminated": True}
    error_of(tight.simulate_request("POST", "/predict", headers={"Content-Type": "image/png"}, extras=env), 413)
    env = {"wsgi.input": io.BytesIO(png(digits[0][0])), "wsgi.input_terminated": True}
    r = tight.simulate_request("POST", "/predict", headers={"Content-Type": "image/png"}, extras=env)
    assert r.status_code == 200 and r.json["predicted_class"] == digits[1][0]


def test_image_over_pixel_limit_is_413(client, tight):
    big = png(np.zeros((65, 30), np.uint8))
    assert "65" in error_of(tight.simulate_post("/predict", body=big, headers={"Content-Type": "image/png"}),
                            413)["description"]
    huge = png(np.full((5000, 5000), 255, np.uint8))  # the old service decoded this
    body, ct = multipart({"file": huge})
    assert len(body) < 1 << 20
    error_of(client.simulate_post("/predict", body=body, headers={"Content-Type": ct}), 413)


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "malformed JSON"),
    (b"[1, 2]", "instances"),
    (b'{"inputs": []}', "instances"),
    (b'{"instances": []}', "non-empty"),
    (b'{"instances": [[0.5, 0.5]]}', "784"),
    (b'{"instances": [[[0.5]]]}', "784"),
    (b'{"instances": [[0.1], [0.1, 0.2]]}', "rectangular"),
    (b'{"instances": [["a", "b"]]}', "numbers"),
    (b'{"instances": [[true, false]]}', "numbers"),
    (b'{"instances": [[null, 1]]}', "numbers"),
    (b'{"instances": [[NaN' + b", 0" * 783 + b"]]}", "NaN"),
    (b'{"instances": [[Infinity' + b", 0" * 783 + b"]]}", "NaN"),
    (b'{"instances": [[1.5' + b", 0" * 783 + b"]]}", "[0, 1]"),
    (b'{"instances": [[-0.1' + b", 0" * 783 + b"]]}", "[0, 1]"),
    (b'\xff\xfe', "malformed JSON"),
])
def test_bad_json_is_400(client, body, reason):
    e = error_of(client.simulate_post("/predict", body=body, headers={"Content-Type": "application/json"}), 400)
    assert reason in e["description"]


def test_json_limits(tight):
    zeros = [0] * 784
    e = error_of(tight.simulate_post("/predict", json={"instances": [zeros] * 4}), 400)
    assert "limit is 3" in e["description"]
    error_of(tight.simulate_post("/predict", json={"instances": [[0.123456] * 784] * 10}), 413)


def test_wrong_method_is_405(client):
    for method, path in (("GET", "/predict"), ("POST", "/liveness"), ("DELETE", "/v1/model"),
                         ("GET", "/v2/models/mnistlite/infer")):
        r = client.simulate_request(method, path)
        error_of(r, 405)
        assert r.headers.get("allow")


def test_unknown_route_is_json_404(client):
    error_of(client.simulate_get("/nope", headers={"Accept": "text/html"}), 404)


# ---- request ids, access log, metrics -------------------------------------------------------

def test_request_id_echoed_or_generated(client):
    assert client.simulate_get("/liveness", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.simulate_get("/nope").headers["x-request-id"]
    assert len(generated) == 32 and generated != client.simulate_get("/liveness").headers["x-request-id"]
    assert client.simulate_get("/liveness", headers={"X-Request-ID": "a b\"{}"}).headers["x-request-id"] != "a b\"{}"


def test_access_log_is_one_json_line_per_request(client, log):
    before = log.getvalue().count("\n")
    client.simulate_get("/liveness", headers={"X-Request-ID": "log-me"})
    client.simulate_post("/predict", body=b"x", headers={"Content-Type": "text/plain"})
    lines = log.getvalue().splitlines()[before:]
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert first["request_id"] == "log-me" and first["path"] == "/liveness" and first["status"] == 200
    assert second["method"] == "POST" and second["status"] == 415 and second["duration_ms"] >= 0


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


@pytest.mark.parametrize("tensor, reason", [
    ({"name": "i", "shape": [1, 784], "datatype": "FP64", "data": [0] * 784}, "datatype"),
    ({"name": "i", "shape": [1, 783], "datatype": "FP32", "data": [0] * 783}, "shape"),
    ({"name": "i", "shape": [2, 784], "datatype": "FP32", "data": [0] * 784}, "needs 1568"),
    ({"name": "i", "shape": [1, 784], "datatype": "UINT8", "data": [256] * 784}, "0, 255"),
    ({"name": "i", "shape": [1, 784], "datatype": "UINT8", "data": [0.5] * 784}, "integers"),
    ({"name": "i", "shape": [1, 784], "datatype": "FP32", "data": [2] * 784}, "[0, 1]"),
    ({"name": "i", "shape": [1, 784], "datatype": "FP32"}, "non-empty"),
])
def test_oip_bad_tensors_are_400_with_error_field(client, tensor, reason):
    r = client.simulate_post("/v2/models/mnistlite/infer", json={"inputs": [tensor]})
    e = error_of(r, 400)
    assert reason in e["description"] and e["error"] == e["description"]


def test_oip_request_shape_errors(client):
    for body in ({"inputs": []}, {"inputs": [{}, {}]}, [1], {"inputs": [{"name": "i", "shape": [1, 784],
                 "datatype": "FP32", "data": [0] * 784}], "outputs": [{"name": "logits"}]}):
        error_of(client.simulate_post("/v2/models/mnistlite/infer", json=body), 400)
    error_of(client.simulate_post("/v2/models/mnistlite/infer", body=b"x", headers={"Content-Type": "image/png"}), 415)
    error_of(client.simulate_get("/v2/models/other"), 404)


# ---- settings -------------------------------------------------------------------------------

def test_settings_from_env():
    s = Settings.from_env({"MNISTLITE_MAX_BODY_BYTES": "2048", "MNISTLITE_MAX_IMAGE_SIDE": "100",
                           "MNISTLITE_ACCESS_LOG": "off"})
    assert (s.max_body_bytes, s.max_image_side, s.access_log, s.max_batch) == (2048, 100, False, 1000)
    with pytest.raises(ValueError, match="MNISTLITE_MAX_BODY_BYTES"):
        Settings.from_env({"MNISTLITE_MAX_BODY_BYTES": "lots"})
    with pytest.raises(ValueError, match="MNISTLITE_MAX_BATCH"):
        Settings.from_env({"MNISTLITE_MAX_BATCH": "0"})


def test_predict_body_is_falcons_default_json_rendering(client, digits):
    # /predict writes its JSON itself (one encoder, no media-handler lookup): the bytes must stay
    # exactly what resp.media gave (json.dumps, ensure_ascii=False), for images and JSON batches.
    x, _ = digits
    r = client.simulate_post("/predict", body=png(255 - x[0]), headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content == json.dumps(r.json, ensure_ascii=False).encode()
    r = client.simulate_post("/predict", json={"instances": (x[:2] / 255).tolist()})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content == json.dumps(r.json, ensure_ascii=False).encode() and len(r.json["predictions"]) == 2


def test_access_log_escapes_odd_paths_like_json_dumps(client, log):
    before = log.getvalue().count("\n")
    path = '/odd"\\path\u00e9\u2028'
    client.simulate_get(path)
    line = log.getvalue().splitlines()[before]
    assert json.loads(line)["path"] == path
    assert '"path":' + json.dumps(path) + "," in line
