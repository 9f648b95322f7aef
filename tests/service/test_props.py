"""Properties: no body a client can send makes the service answer 5xx, and every answer is JSON (the
request side, in front of a fake predictor)."""
from __future__ import annotations

import io

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from service.app import create_app
from service.settings import Settings

CONTENT_TYPES = ["image/png", "image/jpeg", "application/octet-stream", "application/json", "text/plain",
                 "multipart/form-data; boundary=xyz", "multipart/form-data", "image/gif", ""]
ROUTES = ["/predict", "/v2/models/mnistlite/infer", "/v1/models/mnistlite:predict"]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def client(fake):
    return testing.TestClient(create_app(fake, settings=Settings(access_log=False, max_image_side=512)))


def assert_client_error_or_ok(r):
    assert r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-request-id"]


@SETTINGS
@given(body=st.binary(max_size=2048), ct=st.sampled_from(CONTENT_TYPES), route=st.sampled_from(ROUTES))
def test_random_bytes_never_5xx(client, body, ct, route):
    headers = {"Content-Type": ct} if ct else {}
    assert_client_error_or_ok(client.simulate_post(route, body=body, headers=headers))


def _png_prefix_mutations():
    buf = io.BytesIO()
    Image.new("L", (30, 20), 255).save(buf, format="PNG")
    good = buf.getvalue()
    return st.tuples(st.integers(0, len(good)), st.binary(max_size=64)).map(lambda t: good[:t[0]] + t[1])


@SETTINGS
@given(body=_png_prefix_mutations())
def test_damaged_pngs_never_5xx(client, body):
    r = client.simulate_post("/predict", body=body, headers={"Content-Type": "image/png"})
    assert_client_error_or_ok(r)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30)


@SETTINGS
@given(doc=JSON | st.fixed_dictionaries({"instances": JSON}) | st.fixed_dictionaries({
    "inputs": st.lists(st.fixed_dictionaries({"name": st.just("x"),
                                              "datatype": st.sampled_from(["FP32", "UINT8", "X"]),
                                              "shape": st.lists(st.integers(-2, 800), max_size=3),
                                              "data": JSON}),
                       max_size=2)}), route=st.sampled_from(ROUTES))
def test_random_json_never_5xx(client, doc, route):
    import json

    body = json.dumps(doc).encode()  # NaN and Infinity included: Python's json writes and reads them
    r = client.simulate_post(route, body=body, headers={"Content-Type": "application/json"})
    assert_client_error_or_ok(r)


PART = st.fixed_dictionaries({
    "name": st.sampled_from(["file", "image", "", "fi\"le"]),
    "filename": st.none() | st.text(max_size=10),
    "ctype": st.none() | st.sampled_from(["image/png", "text/plain", "x/y"]),
    "data": st.binary(max_size=300),
    "extra": st.sampled_from([b"", b"X-Junk: 1\r\n", b"Content-Transfer-Encoding: base64\r\n",
                              b"broken header\r\n"]),
})


@SETTINGS
@given(parts=st.lists(PART, max_size=4), boundary=st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                                          min_size=1, max_size=70),
       ending=st.sampled_from([b"--\r\n", b"--", b"", b"\r\n", b"garbage"]))
def test_random_multipart_never_5xx(client, parts, boundary, ending):
    b = boundary.encode()
    body = b""
    for p in parts:
        disp = f'form-data; name="{p["name"]}"'
        if p["filename"] is not None:
            disp += f'; filename="{p["filename"]}"'
        head = f"Content-Disposition: {disp}\r\n".encode("utf-8") + p["extra"]
        if p["ctype"]:
            head += f"Content-Type: {p['ctype']}\r\n".encode()
        body += b"--" + b + b"\r\n" + head + b"\r\n" + p["data"] + b"\r\n"
    body += b"--" + b + ending
    quoted = f'"{boundary}"' if '"' not in boundary else boundary
    ct = f"multipart/form-data; boundary={quoted}"
    assert_client_error_or_ok(client.simulate_post("/predict", body=body, headers={"Content-Type": ct}))


# OIP requests with every field present, absent or of any JSON type: the tensor's name, datatype, shape,
# data and parameters, the outputs' names and parameters, the request's id and parameters. The binary
# tensor extension's header and trailing bytes too, with or without a Content-Type.
def _maybe(field: str, value):
    return st.one_of(st.just({}), value.map(lambda v: {field: v}))


def _merged(*parts):
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


SCALAR = st.none() | st.booleans() | st.integers(-3, 3000) | st.floats() | st.text(max_size=6)
PARAMS = JSON | st.dictionaries(st.sampled_from(["binary_data", "binary_data_size", "binary_data_output",
                                                 "classification", "shared_memory_region", "x"]),
                                JSON | SCALAR, max_size=3)
TENSOR = _merged(_maybe("name", st.just("input") | JSON), _maybe("datatype", st.sampled_from(
    ["FP32", "UINT8", "INT64", "BYTES"]) | JSON), _maybe("shape", st.lists(st.integers(-1, 800), max_size=3)
                                                         | JSON),
                 _maybe("data", st.lists(st.integers(0, 1), min_size=784, max_size=784) | JSON),
                 _maybe("parameters", PARAMS))
OUTPUT = _merged(_maybe("name", st.sampled_from(["probabilities", "predicted_class", "logits"]) | JSON),
                 _maybe("parameters", PARAMS))
OIP_REQUEST = _merged(_maybe("id", SCALAR | JSON), _maybe("inputs", st.lists(TENSOR, max_size=2) | JSON),
                      _maybe("outputs", st.lists(OUTPUT, max_size=3) | JSON), _maybe("parameters", PARAMS))


@SETTINGS
@given(doc=OIP_REQUEST, ct=st.sampled_from(["application/json", "", "application/octet-stream"]),
       binary=st.none() | st.binary(max_size=3200), cut=st.integers(-5, 5))
def test_random_oip_requests_never_5xx(client, doc, ct, binary, cut):
    import json

    head = json.dumps(doc).encode()
    headers = {"Content-Type": ct} if ct else {}
    if binary is not None:  # the binary tensor data extension: JSON header, then raw tensor bytes
        headers["Inference-Header-Content-Length"] = str(len(head) + cut)
        head += binary
    assert_client_error_or_ok(client.simulate_post("/v2/models/mnistlite/infer", body=head, headers=headers))
