"""Every error path of the service through falcon.testing: 4xx/405/413/415 with a JSON body, X-Request-ID,
the limits and their settings. A fake predictor stands in for the model (tests/service/conftest.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from falcon import testing

from mnistlite.images.preprocess import preprocess_image
from service.app import create_app
from service.settings import Settings

BOUNDARY = "----test-boundary"


@pytest.fixture(scope="module")
def tight(fake):
    """An app with small limits, to hit them with small bodies."""
    settings = Settings(max_body_bytes=2000, max_json_bytes=40000, max_image_side=64, max_batch=3,
                        access_log=False)
    return testing.TestClient(create_app(fake, settings=settings))


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, reason", [
    (b"just some text\n", "not an image"),
    (b"", "empty"),
])
def test_bad_uploads_are_400(client, data, reason, multipart, error_of):
    body, ct = multipart({"file": data})
    e = error_of(client.simulate_post("/predict", body=body, headers={"Content-Type": ct}), 400)
    assert reason in e["description"]


def test_truncated_image_is_400(client, digits, to_png, error_of):
    data = to_png(digits[0])
    r = client.simulate_post("/predict", body=data[: len(data) // 2], headers={"Content-Type": "image/png"})
    assert "truncated" in error_of(r, 400)["description"]


def test_empty_raw_body_is_400(client, error_of):
    error_of(client.simulate_post("/predict", body=b"", headers={"Content-Type": "image/png"}), 400)


def test_missing_file_field_and_malformed_multipart_are_400(client, multipart, error_of):
    body, ct = multipart({"image": b"x"})
    e = error_of(client.simulate_post("/predict", body=body, headers={"Content-Type": ct}), 400)
    assert "'file'" in e["description"] and "image" in e["description"]
    for body, ct in ((b"garbage", f"multipart/form-data; boundary={BOUNDARY}"),
                     (b"garbage", "multipart/form-data"),
                     (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc".encode(),
                      f"multipart/form-data; boundary={BOUNDARY}")):
        error_of(client.simulate_post("/predict", body=body, headers={"Content-Type": ct}), 400)


@pytest.mark.parametrize("ct", ["text/plain", "application/x-www-form-urlencoded", "image/svg+xml", None])
def test_unsupported_content_type_is_415(client, ct, error_of):
    headers = {"Content-Type": ct} if ct else {}
    e = error_of(client.simulate_post("/predict", body=b"abc", headers=headers), 415)
    assert "image/png" in e["description"]


def test_body_over_limit_is_413_without_reading_it(tight, error_of):
    class Unreadable(io.BytesIO):
        def read(self, *a):
            raise AssertionError("the body must not be read")

    r = tight.simulate_request("POST", "/predict",
                               headers={"Content-Type": "image/png", "Content-Length": "5000"},
                               extras={"wsgi.input": Unreadable()})
    assert "2000" in error_of(r, 413)["description"]
    r = tight.simulate_post("/predict", body=b"\0" * 2001, headers={"Content-Type": "image/png"})
    error_of(r, 413)


def test_chunked_body_over_limit_is_413(tight, fake, digits, to_png, error_of):
    env = {"wsgi.input": io.BytesIO(b"\0" * 5000), "wsgi.input_terminated": True}
    r = tight.simulate_request("POST", "/predict", headers={"Content-Type": "image/png"}, extras=env)
    error_of(r, 413)
    data = to_png(digits[0])
    env = {"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True}
    r = tight.simulate_request("POST", "/predict", headers={"Content-Type": "image/png"}, extras=env)
    assert r.status_code == 200
    assert r.json == fake.answer(preprocess_image(data).reshape(784) / 255)  # the whole chunked body was read


def test_image_over_pixel_limit_is_413(client, tight, to_png, multipart, error_of):
    big = to_png(np.zeros((65, 30), np.uint8))
    assert "65" in error_of(tight.simulate_post("/predict", body=big, headers={"Content-Type": "image/png"}),
                            413)["description"]
    huge = to_png(np.full((5000, 5000), 255, np.uint8))  # the old service decoded this
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
def test_bad_json_is_400(client, body, reason, error_of):
    r = client.simulate_post("/predict", body=body, headers={"Content-Type": "application/json"})
    e = error_of(r, 400)
    assert reason in e["description"]


def test_json_limits(tight, error_of):
    zeros = [0] * 784
    e = error_of(tight.simulate_post("/predict", json={"instances": [zeros] * 4}), 400)
    assert "limit is 3" in e["description"]
    error_of(tight.simulate_post("/predict", json={"instances": [[0.123456] * 784] * 10}), 413)


def test_wrong_method_is_405(client, error_of):
    for method, path in (("GET", "/predict"), ("POST", "/liveness"), ("DELETE", "/v1/model"),
                         ("GET", "/v2/models/mnistlite/infer")):
        r = client.simulate_request(method, path)
        error_of(r, 405)
        assert r.headers.get("allow")


def test_unknown_route_is_json_404(client, error_of):
    error_of(client.simulate_get("/nope", headers={"Accept": "text/html"}), 404)


# ---- request ids ----------------------------------------------------------------------------

def test_request_id_echoed_or_generated(client):
    def request_id(path, **headers):
        return client.simulate_get(path, headers=headers).headers["x-request-id"]

    assert request_id("/liveness", **{"X-Request-ID": "abc-123"}) == "abc-123"
    generated = request_id("/nope")
    assert len(generated) == 32 and generated != request_id("/liveness")
    assert request_id("/liveness", **{"X-Request-ID": "a b\"{}"}) != "a b\"{}"


# ---- Open Inference Protocol ----------------------------------------------------------------

@pytest.mark.parametrize("tensor, reason", [
    ({"name": "i", "shape": [1, 784], "datatype": "FP64", "data": [0] * 784}, "datatype"),
    ({"name": "i", "shape": [1, 783], "datatype": "FP32", "data": [0] * 783}, "shape"),
    ({"name": "i", "shape": [2, 784], "datatype": "FP32", "data": [0] * 784}, "needs 1568"),
    ({"name": "i", "shape": [1, 784], "datatype": "UINT8", "data": [256] * 784}, "0, 255"),
    ({"name": "i", "shape": [1, 784], "datatype": "UINT8", "data": [0.5] * 784}, "integers"),
    ({"name": "i", "shape": [1, 784], "datatype": "FP32", "data": [2] * 784}, "[0, 1]"),
    ({"name": "i", "shape": [1, 784], "datatype": "FP32"}, "non-empty"),
])
def test_oip_bad_tensors_are_400_with_error_field(client, tensor, reason, error_of):
    r = client.simulate_post("/v2/models/mnistlite/infer", json={"inputs": [tensor]})
    e = error_of(r, 400)
    assert reason in e["description"] and e["error"] == e["description"]


def test_oip_request_shape_errors(client, error_of):
    tensor = {"name": "i", "shape": [1, 784], "datatype": "FP32", "data": [0] * 784}
    unknown_output = {"inputs": [tensor], "outputs": [{"name": "logits"}]}
    for body in ({"inputs": []}, {"inputs": [{}, {}]}, [1], unknown_output):
        error_of(client.simulate_post("/v2/models/mnistlite/infer", json=body), 400)
    r = client.simulate_post("/v2/models/mnistlite/infer", body=b"x", headers={"Content-Type": "image/png"})
    error_of(r, 415)
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
