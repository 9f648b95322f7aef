"""The app around the real predictor (service.predictor.Predictor) and real models, in-process: right
digits for real MNIST uploads in every body kind, the detector's warnings, the self-test and /v1/model
from a model file. The other in-process tests use a fake predictor."""
from __future__ import annotations

import json

import numpy as np
import pytest
from falcon import testing

import mnistlite as ml
from service.app import create_app
from service.predictor import Predictor
from service.settings import Settings


@pytest.fixture(scope="module")
def mnist_digits(mnist_uint8):
    """(images uint8 (n, 28, 28), labels): the first 20 test digits."""
    _, (x, y) = mnist_uint8
    return x[:20], y[:20]


@pytest.fixture(scope="module")
def real(small_model):
    return testing.TestClient(create_app(Predictor(small_model), settings=Settings(access_log=False)))


def test_mnist_digits_are_read_right_in_every_body_kind(real, mnist_digits, to_png, multipart):
    x, y = mnist_digits
    body, ct = multipart({"file": to_png(255 - x[0])})
    r = real.simulate_post("/predict", body=body, headers={"Content-Type": ct})
    assert r.status_code == 200, r.text
    assert r.json["predicted_class"] == y[0] and "warnings" not in r.json
    for fmt, ct in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("BMP", "application/octet-stream")):
        r = real.simulate_post("/predict", body=to_png(x[1], fmt), headers={"Content-Type": ct})
        assert r.status_code == 200, (fmt, r.text)
        assert r.json["predicted_class"] == y[1]
    body, ct = multipart({"note": b"hello", "file": to_png(x[2])})
    r = real.simulate_post("/predict", body=body, headers={"Content-Type": ct})
    assert r.json["predicted_class"] == y[2]


def test_json_and_oip_batches_agree_with_the_model(real, small_model, mnist_digits):
    x, _ = mnist_digits
    flat = x[:10].reshape(10, 784) / 255
    expected = small_model.predict(flat.astype(np.float32)).tolist()
    preds = real.simulate_post("/predict", json={"instances": flat.tolist()}).json["predictions"]
    assert [p["predicted_class"] for p in preds] == expected
    req = {"inputs": [{"name": "input", "shape": [10, 28, 28], "datatype": "UINT8", "data": x[:10].tolist()}]}
    out = {o["name"]: o for o in real.simulate_post("/v2/models/mnistlite/infer", json=req).json["outputs"]}
    assert out["predicted_class"]["data"] == expected
    # JSON floats are divided by 255 in float64 and UINT8 pixels in float32: equal up to the answer's rounding
    np.testing.assert_allclose(out["probabilities"]["data"], [v for p in preds for v in p["probabilities"]],
                               atol=2e-6)


def test_noise_upload_gets_an_answer_with_a_warning(real, to_png):
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    r = real.simulate_post("/predict", body=to_png(noise), headers={"Content-Type": "image/png"})
    assert r.status_code == 200
    assert r.json["warnings"] and "noise" in r.json["warnings"][0]
    r = real.simulate_post("/predict", json={"instances": [(noise / 255).ravel().tolist()]})
    assert r.json["predictions"][0]["warnings"]
    rows = [(noise / 255).ravel().tolist(), [0.0] * 784]
    r = real.simulate_post("/v2/models/mnistlite/infer",
                           json={"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 784],
                                             "data": [v for row in rows for v in row]}]})
    warnings = r.json["parameters"]["warnings"]   # OIP parameter values are scalars, never lists
    assert isinstance(warnings, str)
    per_image = json.loads(warnings)
    assert len(per_image) == 2 and "noise" in per_image[0]


@pytest.fixture(scope="module")
def sample_digits(mnist_uint8, to_png):
    """MNIST training images 419-452 as an upload would look: raw, inverted, off-centre on a big canvas."""
    (x, y), _ = mnist_uint8
    x, y = x[419:453], y[419:453]
    variants = []
    for i, (im, label) in enumerate(zip(x, y, strict=True)):
        canvas = np.full((60, 90), 255, np.uint8)
        top, left = 2 + i % 25, 3 + (7 * i) % 55
        canvas[top:top + 28, left:left + 28] = 255 - im
        variants += [(to_png(im), label), (to_png(255 - im), label), (to_png(canvas), label)]
    return variants


def test_sample_style_digits_are_predicted_correctly(reference_model, sample_digits):
    # The reference model (shared with the accuracy tests): the small one misses a couple of these.
    client = testing.TestClient(create_app(Predictor(reference_model), settings=Settings(access_log=False)))
    wrong = []
    for i, (data, label) in enumerate(sample_digits):
        r = client.simulate_post("/predict", body=data, headers={"Content-Type": "image/png"})
        assert r.status_code == 200
        if r.json["predicted_class"] != label:
            kind = ("raw", "inverted", "off-centre")[i % 3]
            wrong.append((419 + i // 3, kind, label, r.json["predicted_class"]))
    assert len(sample_digits) == 102 and not wrong


def test_readiness_is_503_when_the_self_test_digit_is_wrong(error_of):
    broken = ml.MLP([784, 64, 10], seed=0)  # untrained, and biased to always say "0"
    broken.weights[-1][1][:] = 0
    broken.weights[-1][1][0] = 1000.0
    c = testing.TestClient(create_app(Predictor(broken), settings=Settings(access_log=False)))
    for path in ("/readiness", "/v2/health/ready", "/v2/models/mnistlite/ready"):
        body = error_of(c.simulate_get(path), 503)
        assert "predicted as 0" in body["description"]
    assert c.simulate_get("/liveness").status_code == 200


def test_model_info(small_model_path):
    model = ml.load(small_model_path)
    c = testing.TestClient(create_app(Predictor(model), settings=Settings(access_log=False)))
    info = c.simulate_get("/v1/model").json
    assert info["name"] == "mnistlite"
    assert info["sha256"] == model.sha256 and info["version"] == model.sha256[:12]
    assert info["layer_sizes"] == [784, 64, 10]
    assert info["input"]["image"]["max_image_side"] == 4096
    assert info["input"]["json"]["max_batch"] == 1000
    assert "training_metrics" in info


def test_model_info_carries_training_metrics(small_model, tmp_path):
    path = ml.save(small_model, tmp_path / "m.npz", metadata={"metrics": {"test_accuracy": 0.96}})
    c = testing.TestClient(create_app(Predictor(ml.load(path)), settings=Settings(access_log=False)))
    assert c.simulate_get("/v1/model").json["training_metrics"] == {"test_accuracy": 0.96}


def test_a_model_that_is_not_784_inputs_is_refused():
    with pytest.raises(ValueError, match="784 inputs"):
        Predictor(ml.MLP([100, 10], seed=0))
