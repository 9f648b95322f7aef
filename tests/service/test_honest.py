"""Honest answers from the real predictor in-process: calibrated confidences, abstentions with their
reasons in every route (image upload, JSON batch, OIP), the thresholds in /v1/model, the abstention
counter in /metrics, and a model file from before calibration answering exactly as it used to."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from falcon import testing

import mnistlite as ml
from mnistlite.nn.calibration import Calibration
from service.app import create_apps
from service.predictor import Predictor
from service.settings import Settings


def _client(model):
    """A TestClient around the public app, with ``.admin`` around the admin app (/metrics)."""
    public, admin = create_apps(Predictor(model), settings=Settings(access_log=False))
    client = testing.TestClient(public)
    client.admin = testing.TestClient(admin)
    return client


@pytest.fixture(scope="module")
def digits(mnist_uint8):
    _, (x, y) = mnist_uint8
    return x[:8], y[:8]


@pytest.fixture(scope="module")
def calibrated(small_model, tmp_path_factory):
    """A copy of the small model with a calibration: temperature 0.8, answer at >= 0.5."""
    path = ml.save(small_model, tmp_path_factory.mktemp("honest") / "m.npz")
    model = ml.load(path)
    model.calibration = Calibration(temperature=0.8, min_confidence=0.5, min_pair=0.3)
    return ml.load(ml.save(model, path))


@pytest.fixture(scope="module")
def old_format(small_model, tmp_path_factory):
    """The small model as a format-1 file (before calibration): no "calibration" in its metadata."""
    path = ml.save(small_model, tmp_path_factory.mktemp("old") / "old.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    meta["format_version"] = 1
    del meta["calibration"]
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    return ml.load(path)


def _batch(client, images):
    x = (images.reshape(len(images), 784) / 255).round(4).tolist()
    r = client.simulate_post("/predict", json={"instances": x})
    assert r.status_code == 200, r.text
    return r.json["predictions"]


def test_blank_input_is_not_a_digit_in_every_route(calibrated, digits, to_png):
    client = _client(calibrated)
    x, y = digits
    batch = np.concatenate([np.zeros((1, 28, 28), np.uint8), x[:3]])
    answers = _batch(client, batch)
    assert answers[0]["abstain"] is True and answers[0]["abstain_reason"] == "not_a_digit"
    assert "blank" in answers[0]["reason"]
    for a, label in zip(answers[1:], y[:3], strict=True):
        assert a["abstain"] is False and a["predicted_class"] == label and "reason" not in a
    paper = np.full((60, 80), 250, np.uint8)   # an empty white page, uploaded
    r = client.simulate_post("/predict", body=to_png(paper), headers={"Content-Type": "image/png"})
    assert r.json["abstain"] is True and r.json["abstain_reason"] == "not_a_digit", r.json
    assert r.json["warnings"] and "ink" in r.json["warnings"][0]   # the preprocessing's own reason
    assert {"predicted_class", "confidence", "probabilities", "model_version"} <= set(r.json)
    body = {"inputs": [{"name": "input", "datatype": "UINT8", "shape": [2, 784],
                        "data": batch[:2].reshape(-1).tolist()}]}
    r = client.simulate_post("/v2/models/mnistlite/infer", json=body)
    outputs = {o["name"]: o for o in r.json["outputs"]}
    assert outputs["abstain"]["data"] == [True, False] and outputs["abstain"]["datatype"] == "BOOL"
    assert outputs["abstain_reason"]["data"] == ["not_a_digit", ""]
    metrics = client.admin.simulate_get("/metrics").text
    assert 'mnistlite_abstentions_total{reason="not_a_digit"} 3.0' in metrics, metrics


def test_a_photo_of_pure_noise_is_not_a_digit_and_says_why(calibrated, to_png):
    """Preprocessing's noise rule reaches the answer: no grain is blown up into a digit to be judged."""
    client = _client(calibrated)
    rng = np.random.default_rng(7)
    for noise in (rng.integers(0, 256, (240, 320)), rng.normal(128, 50, (300, 200)).clip(0, 255)):
        r = client.simulate_post("/predict", body=to_png(noise.astype(np.uint8)),
                                 headers={"Content-Type": "image/png"})
        assert r.json["abstain"] is True and r.json["abstain_reason"] == "not_a_digit", r.json
        assert r.json["warnings"][0].startswith("noise"), r.json


def test_the_confidence_threshold_is_applied(calibrated, digits):
    """Just above a digit's calibrated confidence the answer is "unsure, between a and b"; just below,
    the digit. A service that ignores the threshold fails one of the two."""
    x, _ = digits
    p = calibrated.predict_proba(x[:1].reshape(1, 784).astype(np.float32) / 255)[0]
    first, second = np.argsort(p)[::-1][:2]
    for delta, abstains in ((1e-4, True), (-1e-4, False)):
        model = ml.MLP(calibrated.layer_sizes, init="zeros")
        model.flat_params[...] = calibrated.flat_params
        model.calibration = dataclasses.replace(calibrated.calibration, min_pair=0.0,
                                                min_confidence=float(p[first]) + delta)
        a = _batch(_client(model), x[:1])[0]
        assert a["abstain"] is abstains, (delta, a)
        if abstains:
            assert a["abstain_reason"] == "unsure"
            assert a["reason"] == f"between {min(first, second)} and {max(first, second)}"


def test_calibrated_confidence_is_the_model_files_temperature(calibrated, small_model, digits):
    x, _ = digits
    a = _batch(_client(calibrated), x[:4])
    z = small_model.logits(x[:4].reshape(4, 784).astype(np.float32) / 255)
    expected = ml.softmax(z / np.float32(0.8)).max(axis=1)
    np.testing.assert_allclose([r["confidence"] for r in a], expected, atol=2e-6)
    info = _client(calibrated).simulate_get("/v1/model").json["calibration"]
    assert info["temperature"] == 0.8 and info["thresholds"]["min_confidence"] == 0.5


def test_an_old_model_file_keeps_its_answers(old_format, small_model, digits):
    """A model file from before calibration (a rollback): plain softmax confidences, never abstains,
    not even for a blank image; /v1/model says it has no calibration."""
    x, _ = digits
    client = _client(old_format)
    batch = np.concatenate([np.zeros((1, 28, 28), np.uint8), x[:4]])
    answers = _batch(client, batch)
    assert [a["abstain"] for a in answers] == [False] * 5
    assert all("abstain_reason" not in a for a in answers)
    z = small_model.logits(batch.reshape(5, 784).astype(np.float32) / 255)
    np.testing.assert_allclose([a["confidence"] for a in answers], ml.softmax(z).max(axis=1), atol=2e-6)
    assert client.simulate_get("/v1/model").json["calibration"] is None
