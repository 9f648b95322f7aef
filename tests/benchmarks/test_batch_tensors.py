"""bench_service.py --batch: the JSON and binary bodies it times are the requests it says (the same batch,
the same answers through the real app), its response parser reads both kinds, and bad arguments are
refused. In-process with falcon.testing; the timing itself is the benchmark's job."""
from __future__ import annotations

import batch_tensors
import bench_service
from falcon import testing

import mnistlite as ml
from service.app import create_app
from service.predictor import Predictor
from service.settings import Settings


def as_http(r) -> bytes:
    """A falcon.testing result as the raw HTTP response bytes the benchmark reads."""
    head = "".join(f"{k}: {v}\r\n" for k, v in r.headers.items())
    return f"HTTP/1.1 {r.status}\r\n{head}\r\n".encode() + r.content


def test_json_and_binary_bodies_carry_the_same_batch(small_model, mnist_uint8):
    client = testing.TestClient(create_app(Predictor(small_model), settings=Settings(access_log=False)))
    _, (x, _) = mnist_uint8
    x = ml.to_float(x[:32]).reshape(32, 784)
    answers = {}
    for mode, make in batch_tensors.BODIES.items():
        body, headers = make(x)
        r = client.simulate_post("/v2/models/mnistlite/infer", body=body, headers=headers)
        assert r.status_code == 200, (mode, r.text)
        answers[mode] = batch_tensors.classes(as_http(r))
    assert answers["JSON tensors"] == answers["binary tensors"] == small_model.predict(x).tolist()
    body, headers = batch_tensors.binary_body(x)
    assert len(body) - int(headers[batch_tensors.HEADER]) == x.nbytes  # 4 bytes a pixel after the header


def test_bad_batch_arguments_are_usage_errors(capsys):
    assert bench_service.main(["--batch", "0"]) == 2
    assert bench_service.main(["--batch", "1001"]) == 2
    assert "--batch must be in 1..1000" in capsys.readouterr().err
