"""POST /predict through falcon.testing with a fake predictor: multipart, raw image and JSON bodies reach
the model as the library's preprocessing makes them, and its answers come back whole and as JSON."""
from __future__ import annotations

import json
import math

import numpy as np

from mnistlite.images.preprocess import preprocess_image


def check_answer(a: dict, version: str):
    assert set(a) >= {"predicted_class", "confidence", "probabilities", "model_version"}
    assert len(a["probabilities"]) == 10 and math.isclose(sum(a["probabilities"]), 1.0, abs_tol=1e-4)
    assert a["confidence"] == max(a["probabilities"]) == a["probabilities"][a["predicted_class"]]
    assert a["model_version"] == version


def model_saw(fake, data: bytes) -> np.ndarray:
    """Check that the fake's last input is the library's preprocessing of ``data``; return it."""
    expected = preprocess_image(data).reshape(1, 784).astype(np.float32) / 255
    np.testing.assert_array_equal(fake.seen[-1], expected)
    return expected[0]


def test_predict_multipart_raw_png_and_jpeg(client, fake, digits, to_png, multipart):
    version = client.simulate_get("/readiness").json["model_version"]
    assert version == fake.version
    data = to_png(255 - digits[0])  # dark ink on white, as people upload
    body, ct = multipart({"file": data})
    r = client.simulate_post("/predict", body=body, headers={"Content-Type": ct})
    assert r.status_code == 200, r.text
    check_answer(r.json, version)
    assert r.json == fake.answer(model_saw(fake, data)) and "warnings" not in r.json
    for fmt, ct in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("BMP", "application/octet-stream")):
        data = to_png(digits[1], fmt)
        r = client.simulate_post("/predict", body=data, headers={"Content-Type": ct})
        assert r.status_code == 200, (fmt, r.text)
        assert r.json == fake.answer(model_saw(fake, data)), fmt


def test_multipart_file_field_found_among_others(client, fake, digits, to_png, multipart):
    data = to_png(digits[2])
    body, ct = multipart({"note": b"hello", "file": data})
    r = client.simulate_post("/predict", body=body, headers={"Content-Type": ct})
    assert r.status_code == 200 and r.json == fake.answer(model_saw(fake, data))


def test_predict_json_flat_and_square(client, fake, digits):
    x = digits[:10].reshape(10, 784) / 255
    r = client.simulate_post("/predict", json={"instances": x.tolist()})
    assert r.status_code == 200, r.text
    preds = r.json["predictions"]
    np.testing.assert_array_equal(fake.seen[-1], x.astype(np.float32))  # one batch, as sent
    assert [p["predicted_class"] for p in preds] == one_by_one(client, digits[:10])
    assert preds == [fake.answer(row) for row in x]
    square = (digits[:2] / 255).tolist()
    r2 = client.simulate_post("/predict", json={"instances": square})
    assert r2.json["predictions"] == preds[:2]


def one_by_one(client, images) -> list:
    """What the model says about these digits when sent one by one as JSON."""
    return [client.simulate_post("/predict", json={"instances": [(im / 255).ravel().tolist()]})
            .json["predictions"][0]["predicted_class"] for im in images]


def test_json_batch_of_1000(client, fake, digits):
    batch = np.tile(digits.reshape(20, 784) / 255, (50, 1)).round(3)
    r = client.simulate_post("/predict", json={"instances": batch.tolist()})
    assert r.status_code == 200 and len(r.json["predictions"]) == 1000
    assert fake.seen[-1].shape == (1000, 784)


def test_predict_body_is_falcons_default_json_rendering(client, digits, to_png):
    # The bytes must stay exactly what resp.media gives (json.dumps, ensure_ascii=False), for images
    # and JSON batches, with and without explain.
    for params in ({}, {"explain": "1"}):
        r = client.simulate_post("/predict", params=params, body=to_png(255 - digits[0]),
                                 headers={"Content-Type": "image/png"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.content == json.dumps(r.json, ensure_ascii=False).encode()
        r = client.simulate_post("/predict", params=params, json={"instances": (digits[:2] / 255).tolist()})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.content == json.dumps(r.json, ensure_ascii=False).encode()
        assert len(r.json["predictions"]) == 2
