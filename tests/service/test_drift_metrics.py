"""What /metrics exports for drift: the confidence histogram, abstentions by reason, input kinds, the
model's creation time and readiness, and the drift PSI against the model file's training reference
(in-process with falcon's TestClient, and merged across workers under the real gunicorn)."""
from __future__ import annotations

import datetime as dt
import http.client
import json

import numpy as np
import pytest
from falcon import testing

import mnistlite as ml
from mnistlite import drift
from service.app import create_apps
from service.predictor import Predictor
from service.settings import Settings


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one series in a Prometheus text exposition, None when it is absent."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.rsplit(" ", 1)[0] == want:
            return float(line.rsplit(" ", 1)[1])
    return None


def scrape(client) -> str:
    """/metrics from the admin app beside ``client``'s public one."""
    return client.admin.simulate_get("/metrics").text


@pytest.fixture(scope="module")
def app_of():
    """app_of(predictor) -> a TestClient around its public app (no access log), with ``.admin`` around the
    admin app that serves /metrics."""
    def make(predictor):
        public, admin = create_apps(predictor, settings=Settings(access_log=False))
        client = testing.TestClient(public)
        client.admin = testing.TestClient(admin)
        return client
    return make


@pytest.fixture(scope="module")
def model_with_reference(small_model_path, mnist):
    """The small real model, with a drift reference from the MNIST test set's even-numbered digits (both
    writer groups: its two halves differ enough to move the confidence PSI)."""
    model = ml.load(small_model_path)
    _, (xt, _) = mnist
    model.metadata["drift_reference"] = drift.reference(model.predict_proba(xt[::2]), "test")
    return model


def post_png(client, data: bytes):
    r = client.simulate_post("/predict", body=data, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    return r.json


def test_model_age_readiness_and_no_drift_without_reference(app_of, make_fake):
    text = scrape(app_of(make_fake()))
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp()
    assert metric(text, "mnistlite_model_created_timestamp_seconds") == created
    assert metric(text, "mnistlite_ready") == 1.0
    assert "mnistlite_drift_psi{" not in text   # the fake's "file" has no training reference
    assert metric(scrape(app_of(make_fake(failure="broken"))), "mnistlite_ready") == 0.0


def test_confidence_histogram_and_input_kinds(app_of, make_fake, digits, to_png):
    client = app_of(make_fake())
    before = scrape(client)
    # the fake answers 0.91: bucket le=0.95 and up count it, le=0.9 does not
    post_png(client, to_png(digits[3]))                                          # 28x28
    post_png(client, to_png(np.kron(digits[4], np.ones((4, 4), np.uint8))))       # 112x112, flat border
    yy, xx = np.mgrid[0:200, 0:200]
    photo = (60 + 0.8 * xx + 0.3 * yy).astype(np.uint8)                            # uneven light
    photo[50:150, 90:110] = 250
    post_png(client, to_png(photo))
    r = client.simulate_post("/predict", json={"instances": [d.tolist() for d in digits[:5] / 255.0]})
    assert r.status_code == 200
    after = scrape(client)

    def moved(name, **labels):
        return (metric(after, name, **labels) or 0) - (metric(before, name, **labels) or 0)

    assert moved("mnistlite_confidence_count") == 8
    assert moved("mnistlite_confidence_bucket", le="0.95") == 8
    assert moved("mnistlite_confidence_bucket", le="0.9") == 0
    assert moved("mnistlite_confidence_sum") == pytest.approx(8 * 0.91)
    assert [moved("mnistlite_inputs_total", kind=k) for k in ("28x28", "larger", "photo", "array")] == \
        [1, 1, 1, 5]


class AbstainingFake:
    """Wraps a fake predictor; its answers abstain with the reasons given in turn (None: no abstention)."""

    def __init__(self, fake, reasons):
        self.fake, self.reasons = fake, list(reasons)

    def __getattr__(self, name):
        return getattr(self.fake, name)

    def predict(self, x):
        answers = self.fake.predict(x)
        for a in answers:
            reason = self.reasons.pop(0)
            a["abstain"] = reason is not None
            if reason:
                a["abstain_reason"] = reason
        return answers


def test_abstentions_by_reason(app_of, make_fake, digits):
    reasons = ["not_a_digit", None, "unsure", "not_a_digit", "something_new"]
    client = app_of(AbstainingFake(make_fake(), reasons))
    for reason in ("not_a_digit", "unsure", "other"):   # every reason listed from the start
        assert metric(scrape(client), "mnistlite_abstentions_total", reason=reason) == 0
    r = client.simulate_post("/predict", json={"instances": [d.tolist() for d in digits[:5] / 255.0]})
    assert r.status_code == 200
    text = scrape(client)
    counts = [metric(text, "mnistlite_abstentions_total", reason=r)
              for r in ("not_a_digit", "unsure", "other")]
    assert counts == [2, 1, 1]


def test_drift_psi_small_on_digits_large_on_shifted_ones(app_of, model_with_reference, mnist):
    client = app_of(Predictor(model_with_reference))
    _, (xt, _) = mnist
    xt = xt[1::2][np.random.default_rng(0).permutation(5000)]   # digits the reference did not see, mixed

    def send(x):
        for i in range(0, len(x), 100):
            r = client.simulate_post("/predict", json={"instances": x[i:i + 100].tolist()})
            assert r.status_code == 200

    assert "mnistlite_drift_psi{" not in scrape(client)
    send(xt[:100])                          # fewer answers than the minimum: no PSI yet
    assert "mnistlite_drift_psi{" not in scrape(client)
    send(xt[100:1000])
    text = scrape(client)
    ordinary = {s: metric(text, "mnistlite_drift_psi", signal=s) for s in ("class", "confidence")}
    assert all(v is not None and 0 <= v < 0.1 for v in ordinary.values()), ordinary
    # the same digits transposed: a source the model was never trained on
    send(xt[1000:2000].reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784))
    text = scrape(client)
    shifted = {s: metric(text, "mnistlite_drift_psi", signal=s) for s in ("class", "confidence")}
    assert max(shifted.values()) > 0.25, shifted


@pytest.mark.slow
def test_drift_and_confidence_merge_across_gunicorn_workers(gunicorn, model_with_reference, mnist, tmp_path):
    path = ml.save(model_with_reference, tmp_path / "with-reference.npz")
    server = gunicorn(path)
    _, (xt, _) = mnist
    xt = xt[1::2][np.random.default_rng(1).permutation(5000)]
    sent = 0
    for i in range(12):   # a new connection each time: both workers most likely serve some
        body = json.dumps({"instances": xt[100 * i:100 * (i + 1)].tolist()})
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 200
        conn.close()
        sent += 100
    conn = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    assert metric(text, "mnistlite_confidence_count") == sent
    assert metric(text, "mnistlite_inputs_total", kind="array") == sent
    for signal in ("class", "confidence"):   # one series per signal: the worst live worker's window
        lines = [ln for ln in text.splitlines() if ln.startswith(f'mnistlite_drift_psi{{signal="{signal}"}}')]
        # ~600 answers per worker: sampling noise only, well under the alert's 0.25
        assert len(lines) == 1 and 0 <= float(lines[0].rsplit(" ", 1)[1]) < 0.25, lines
    created = dt.datetime.fromisoformat(model_with_reference.metadata["created"]).timestamp()
    assert metric(text, "mnistlite_model_created_timestamp_seconds") == created
    assert metric(text, "mnistlite_ready") == 1.0
