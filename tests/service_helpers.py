"""Shared pieces of the falcon.testing service tests: the app fixtures, PNG and multipart makers, the JSON-error check.

Test modules load it with `pytest_plugins = ["service_helpers"]` (fixtures) and import the helpers by name.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from falcon import testing
from PIL import Image

from service.app import create_app

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


def error_of(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json
    assert set(body) >= {"title"} and isinstance(body["title"], str)
    return body
