"""Fixtures of the robustness tests: a service with short deadlines, and one MNIST digit as a PNG."""
from __future__ import annotations

import pytest
from service_kit import start


@pytest.fixture(scope="module")
def server(gunicorn, small_model_path) -> int:
    """The port of a service with short deadlines, so that the cut-offs below happen within a test's
    patience."""
    return start(gunicorn, small_model_path, MNISTLITE_IDLE_TIMEOUT="1", MNISTLITE_BODY_TIMEOUT="2").port


@pytest.fixture(scope="module")
def png(mnist_uint8):
    import io

    from PIL import Image

    _, (x, _y) = mnist_uint8
    buf = io.BytesIO()
    Image.fromarray(255 - x[0]).save(buf, format="PNG")
    return buf.getvalue()
