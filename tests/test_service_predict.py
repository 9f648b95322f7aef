"""POST /predict through falcon.testing: multipart, raw image and JSON bodies, the answer's shape, warnings,
sample-style digits."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from falcon import testing

from service.app import create_app
from service.settings import Settings

pytest.register_assert_rewrite("service_helpers")  # keep pytest's assert diffs in the shared helpers
from service_helpers import multipart, png  # noqa: E402

pytest_plugins = ["service_helpers"]  # its fixtures: digits, log, client


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
