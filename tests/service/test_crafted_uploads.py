"""Crafted uploads through the app (falcon.testing): a decode-budget refusal is a 413 with a JSON reason,
junk is a 400, and a big picture that fits the budget is answered."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # benchmarks/ is no package
import abuse_cases  # noqa: E402

BOMBS = ["png-I16-4096", "png-L-paeth-4096",
         "webp-anim-4096x10", "tiff-F-4096", "tiff-IFD-60000", "png-zTXt-64MB",
         "jpeg-progressive-4096", "pgm-plain-2800"]


@pytest.fixture(scope="module")
def crafted():
    return {c.name: c.data for c in abuse_cases.cases(BOMBS + ["bmp-L-4000", "ico-256"])}


@pytest.mark.parametrize("name", BOMBS)
@pytest.mark.parametrize("as_multipart", [False, True])
def test_costly_uploads_are_413_with_the_reason(client, multipart, error_of, crafted, name, as_multipart):
    if as_multipart:
        body, ct = multipart({"file": crafted[name]})
    else:
        body, ct = crafted[name], "application/octet-stream"
    r = client.simulate_post("/predict", body=body, headers={"Content-Type": ct})
    description = error_of(r, 413)["description"]
    assert "send" in description or "save" in description


def test_unaccepted_format_is_400_and_a_big_flat_page_is_answered(client, error_of, crafted):
    error_of(client.simulate_post("/predict", body=crafted["ico-256"],
                                  headers={"Content-Type": "application/octet-stream"}), 400)
    r = client.simulate_post("/predict", body=crafted["bmp-L-4000"],
                             headers={"Content-Type": "image/bmp"})
    assert r.status_code == 200 and "predicted_class" in r.json


def test_reading_a_released_body_does_not_take_the_upload_slot_again():
    # gunicorn reads a finished body once more (to find the next request) after post_request released
    # its slot; that read took the slot back for good, and every later large upload waited for a 408.
    import io
    import time

    from gevent.lock import BoundedSemaphore

    from service.connection import DeadlineBody

    slots = BoundedSemaphore(1)
    body = DeadlineBody(io.BytesIO(b"a" * 10), time.monotonic() + 5, 5, length=10, slots=slots)
    assert body.read(100) == b"a" * 10 and body.finished
    body.release()
    assert body.read(8192) == b""
    assert slots.acquire(blocking=False), "the slot leaked"
