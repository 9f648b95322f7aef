"""Real inference clients against the service under the repo's gunicorn config: NVIDIA's
``tritonclient.http`` with its default arguments (Open Inference Protocol, JSON and binary tensors) and a
TF Serving-style REST request through ``requests`` as TF Serving's docs write it. Answers are checked
against POST /predict on real MNIST test digits."""
from __future__ import annotations

import json

import numpy as np
import pytest
import requests

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.slow
BATCH = 256  # the server's MNISTLITE_MAX_BATCH here: the benchmark's batch size


@pytest.fixture(scope="module")
def server(gunicorn, small_model_path):
    return gunicorn(small_model_path, MNISTLITE_MAX_BATCH=str(BATCH))


@pytest.fixture(scope="module")
def triton(server):
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def test_digits(mnist_uint8):
    """The first 256 MNIST test digits, uint8 (256, 28, 28)."""
    _, (x, _) = mnist_uint8
    return x[:BATCH]


def predict_answers(server, x01: np.ndarray) -> list:
    """POST /predict's answers for float (n, 784) images in [0, 1]."""
    r = requests.post(f"{server.url}/predict", json={"instances": x01.tolist()}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def test_health(triton):
    assert triton.is_server_live() and triton.is_server_ready() and triton.is_model_ready("mnistlite")


def test_metadata_names_each_tensor_once(triton):
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    meta = triton.get_model_metadata("mnistlite")
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [("input", "FP32", [-1, 784])]
    names = [o["name"] for o in meta["outputs"]]
    assert len(names) == len(set(names)) and {"predicted_class", "probabilities"} <= set(names)


def infer(triton, meta, x, *, binary: bool, outputs=None):
    """Build the request from the metadata, as a generic client does; x float32 (n, 784)."""
    spec = meta["inputs"][0]
    inp = httpclient.InferInput(spec["name"], [len(x), 784], spec["datatype"])
    inp.set_data_from_numpy(x, binary_data=binary)
    wanted = None if outputs is None else [httpclient.InferRequestedOutput(n, binary_data=binary)
                                           for n in outputs]
    return triton.infer("mnistlite", [inp], outputs=wanted)


def test_json_tensors_in_and_out(triton, server, test_digits):
    x = (test_digits[:8].reshape(8, 784) / np.float32(255)).astype(np.float32)
    result = infer(triton, triton.get_model_metadata("mnistlite"), x, binary=False,
                   outputs=["predicted_class", "probabilities"])
    assert all("data" in o for o in result.get_response()["outputs"])  # JSON, not binary
    expected = predict_answers(server, x)
    assert result.as_numpy("predicted_class").tolist() == [a["predicted_class"] for a in expected]
    np.testing.assert_array_equal(result.as_numpy("probabilities"),
                                  np.array([a["probabilities"] for a in expected], np.float32))


def test_json_tensors_at_the_batch_limit_again_and_again(triton, server, test_digits):
    # Each body is over 1 MiB, a "large upload" for the worker: the client's keep-alive connection carries
    # them one after another, so each must give its upload slot back for the next one.
    x = (test_digits.reshape(BATCH, 784) / np.float32(255)).astype(np.float32)
    expected = [a["predicted_class"] for a in predict_answers(server, x)]
    for _ in range(3):
        inp = httpclient.InferInput("input", [BATCH, 784], "FP32")
        inp.set_data_from_numpy(x, binary_data=False)
        result = triton.infer("mnistlite", [inp], outputs=[
            httpclient.InferRequestedOutput("predicted_class", binary_data=False)])
        assert result.as_numpy("predicted_class").tolist() == expected


def test_binary_tensors_with_defaults_at_the_batch_limit_answer_like_predict(triton, server, test_digits):
    x = (test_digits.reshape(BATCH, 784) / np.float32(255)).astype(np.float32)
    inp = httpclient.InferInput("input", [BATCH, 784], "FP32")
    inp.set_data_from_numpy(x)  # binary_data=True is the default, and no outputs: all come back binary
    result = triton.infer("mnistlite", [inp])
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])
    expected = predict_answers(server, x)
    assert result.as_numpy("predicted_class").tolist() == [a["predicted_class"] for a in expected]
    np.testing.assert_array_equal(result.as_numpy("probabilities"),
                                  np.array([a["probabilities"] for a in expected], np.float32))
    np.testing.assert_array_equal(result.as_numpy("confidence"),
                                  np.array([a["confidence"] for a in expected], np.float32))


def test_uint8_28x28_binary(triton, server, test_digits):
    inp = httpclient.InferInput("input", [16, 28, 28], "UINT8")
    inp.set_data_from_numpy(test_digits[:16])
    result = triton.infer("mnistlite", [inp], outputs=[httpclient.InferRequestedOutput("predicted_class")])
    expected = predict_answers(server, test_digits[:16].reshape(16, 784) / 255)
    assert result.as_numpy("predicted_class").tolist() == [a["predicted_class"] for a in expected]


def test_over_the_limit_is_the_clients_exception_with_the_servers_message(triton, test_digits):
    x = np.zeros((BATCH + 1, 784), np.float32)
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException) as e:
        triton.infer("mnistlite", [inp])
    assert e.value.status() == "400"
    assert f"batch of {BATCH + 1} is over the limit of {BATCH}" in e.value.message()


def test_tf_serving_rest_request_as_its_docs_write_it(server, test_digits):
    test_images = test_digits[:3] / 255.0
    data = json.dumps({"signature_name": "serving_default", "instances": test_images[0:3].tolist()})
    headers = {"content-type": "application/json"}
    json_response = requests.post(f"{server.url}/v1/models/mnistlite:predict", data=data, headers=headers,
                                  timeout=30)
    predictions = json.loads(json_response.text)["predictions"]
    assert predictions == predict_answers(server, test_images.reshape(3, 784))
    status = requests.get(f"{server.url}/v1/models/mnistlite", timeout=10).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    r = requests.post(f"{server.url}/v1/models/mnistlite:predict", data='{"instances": [[2]]}', timeout=10)
    assert r.status_code == 400 and "784 numbers" in r.json()["error"]
